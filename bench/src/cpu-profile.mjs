/* global process */
// Preloaded into a service process (NODE_OPTIONS=--import …, since --cpu-prof is not allowed
// there) by `pnpm bench --profile-consume <dir>`: samples the CPU from start to exit and writes
// <dir>/<name>-<pid>.cpuprofile (open it in Chrome DevTools or speedscope).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `${process.env.BENCH_PROFILE_NAME ?? 'consume'}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
