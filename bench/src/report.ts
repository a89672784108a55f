// The readable report: REPORT.md (tables, targets, capacity model) and SVG charts next to
// it, generated from one results JSON. Hand-written analysis (profiles, causes of missed
// targets) lives in bench/analysis.md and is included verbatim.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { BenchResults } from './harness.ts';
import { barChart } from './svg.ts';
import { fmt, num, type Spread } from './stats.ts';
import { STAMP_PAGE, SWEEP_EVERY, readsPerInstance } from './capacity.ts';
import type { HeldSide } from './scale.ts';

const MiB = 1024 * 1024;

export interface Target {
  what: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

function size(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${num(bytes / 1024 / MiB)} GiB`;
  if (bytes >= MiB) return `${num(bytes / MiB)} MiB`;
  return `${num(bytes / 1024)} KiB`;
}

const bar = (name: string, s: Spread): { name: string; value: number; min: number; max: number } => ({ name, value: s.median, min: s.min, max: s.max });

export function targets(r: BenchResults): Target[] {
  const out: Target[] = [];
  const p = r.propagation;
  if (p) {
    const n = Math.max(...p.rows.filter((x) => x.system === 'quire long-poll').map((x) => x.consumers));
    const q = p.rows.find((x) => x.system === 'quire long-poll' && x.consumers === n);
    const e = p.rows.find((x) => x.system === 'etcd watch' && x.consumers === n);
    if (q) out.push({ what: `propagation, ${n} long-poll consumers, p99`, target: '≤ 150 ms', measured: fmt(q.p99, ' ms'), met: q.p99.median <= 150 });
    if (q && e) out.push({ what: `propagation p99 vs etcd watch p99 (${n})`, target: '≤ etcd', measured: `${fmt(q.p99, ' ms')} vs ${fmt(e.p99, ' ms')}`, met: q.p99.median <= e.p99.median });
  }
  if (r.poll) {
    for (const row of r.poll.rows) {
      out.push({ what: `no-change poll ${row.transport}, ${row.topics} topics, ${row.inflight} in flight`, target: '≥ 0.8× bare', measured: `×${fmt(row.ratio)}`, met: row.ratio.median >= 0.8 });
    }
  }
  if (r.large) {
    const big = r.large.rows.at(-1);
    if (big) {
      out.push({ what: `${size(big.bytes)} publish vs raw upload`, target: '≥ 0.9×', measured: `×${fmt(big.publishRatio)}`, met: big.publishRatio.median >= 0.9 });
      out.push({ what: `${size(big.bytes)} download vs raw GetObject`, target: '≥ 0.9×', measured: `×${fmt(big.downloadRatio)}`, met: big.downloadRatio.median >= 0.9 });
      out.push({ what: `${size(big.bytes)} SDK publish peak RSS`, target: '< 200 MB', measured: `${fmt(big.rss.sdkPublish, ' MiB')} (max ${num(big.rss.sdkPublish.max * 1.048576)} MB)`, met: big.rss.sdkPublish.max * 1.048576 < 200 });
      out.push({ what: `${size(big.bytes)} SDK download peak RSS`, target: '< 200 MB', measured: `${fmt(big.rss.sdkDownload, ' MiB')} (max ${num(big.rss.sdkDownload.max * 1.048576)} MB)`, met: big.rss.sdkDownload.max * 1.048576 < 200 });
      if (big.directRatio && big.rss.sdkDirect) {
        out.push({ what: `${size(big.bytes)} direct upload vs raw upload`, target: '≥ 0.9×', measured: `×${fmt(big.directRatio)}`, met: big.directRatio.median >= 0.9 });
        out.push({ what: `${size(big.bytes)} direct upload peak RSS`, target: '< 200 MB', measured: `${fmt(big.rss.sdkDirect, ' MiB')} (max ${num(big.rss.sdkDirect.max * 1.048576)} MB)`, met: big.rss.sdkDirect.max * 1.048576 < 200 });
      }
      if (big.downloadToRatio && big.rss.sdkDownloadTo) {
        out.push({ what: `${size(big.bytes)} downloadTo vs raw GetObject (bytes discarded)`, target: '≥ 0.9×', measured: `×${fmt(big.downloadToRatio)}`, met: big.downloadToRatio.median >= 0.9 });
        if (big.downloadToFileRatio) {
          out.push({ what: `${size(big.bytes)} downloadTo vs raw GetObject into a file`, target: '≥ 0.9×', measured: `×${fmt(big.downloadToFileRatio)}`, met: big.downloadToFileRatio.median >= 0.9 });
        }
        out.push({ what: `${size(big.bytes)} downloadTo peak RSS`, target: '< 200 MB', measured: `${fmt(big.rss.sdkDownloadTo, ' MiB')} (max ${num(big.rss.sdkDownloadTo.max * 1.048576)} MB)`, met: big.rss.sdkDownloadTo.max * 1.048576 < 200 });
      }
    }
  }
  if (r.scale) {
    const s = r.scale;
    out.push({ what: `full refresh, ${num(s.topics)} topics × ${s.versionsPerTopic}`, target: '< 1 s', measured: fmt(s.fullRefresh, ' ms'), met: s.fullRefresh.median < 1000 });
    out.push({ what: `consume RSS, ${num(s.topics)} topics loaded`, target: '< 300 MB', measured: fmt(s.rssLoaded, ' MiB'), met: s.rssLoaded.median * 1.048576 < 300 });
    out.push({ what: `consume RSS, ${num(s.held.polls)} held long-polls`, target: '< 300 MB', measured: fmt(s.held.quire.rssHeld, ' MiB'), met: s.held.quire.rssHeld.median * 1.048576 < 300 });
    out.push({
      what: `all ${num(s.held.polls)} held polls answered after a publish, vs bare fastify long-poll`,
      target: '≤ 1.2×',
      measured: `×${fmt(s.held.ratio)} (${fmt(s.held.quire.allAnsweredMs, ' ms')} vs ${fmt(s.held.bare.allAnsweredMs, ' ms')})`,
      met: s.held.ratio.median <= 1.2,
    });
  }
  return out;
}

export interface WrittenReport {
  markdown: string;
  charts: string[];
}

/** Writes `reportPath` (markdown) and its SVG charts in `<dir of reportPath>/report/`. */
export function writeReport(r: BenchResults, reportPath: string, resultsPath: string, analysisPath?: string): WrittenReport {
  const dir = dirname(reportPath);
  const chartDir = join(dir, 'report');
  mkdirSync(chartDir, { recursive: true });
  const charts: string[] = [];
  const chart = (file: string, svg: string): string => {
    const path = join(chartDir, file);
    writeFileSync(path, svg);
    charts.push(path);
    return `![${file}](${relative(dir, path)})`;
  };
  const L: string[] = [];
  const m = r.machine;
  L.push('# Quire benchmarks');
  L.push('');
  L.push(`Run ${r.startedAt} → ${r.finishedAt}${r.quick ? ' (**quick run**: tiny sizes, figures not meaningful)' : ''}. Raw data: [\`${relative(dir, resultsPath)}\`](${relative(dir, resultsPath)}).`);
  L.push('Command: `pnpm bench` (from a fresh clone: `npm run bench`). Every figure is "median [min–max]" over the repetitions of the same run; each comparison ran alternately with its reference in that run.');
  L.push('');
  L.push('## Machine and versions');
  L.push('');
  L.push(`- ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB memory, ${m.os}.`);
  L.push(
    `- Load average (1/5/15 min) at start ${m.loadAverageAtStart.map((x) => x.toFixed(1)).join(' / ')}, at end ${m.loadAverageAtEnd.map((x) => x.toFixed(1)).join(' / ')}; other processes at start: ${m.otherProcesses.node} node, ${m.otherProcesses.java} java.` +
      (m.loadAverageAtStart[0] !== undefined && m.loadAverageAtStart[0] > m.cpus * 0.5
        ? ' **Other work was running on the machine during this run**: absolute figures are disturbed; the side-by-side ratios are the meaningful ones.'
        : ''),
  );
  L.push(`- Everything (servers, services, load generators, peers) ran on this one machine, on loopback.`);
  L.push(`- Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  for (const n of r.notes ?? []) L.push(`- Note: ${n}`);
  if (r.errors.length) {
    L.push('');
    L.push('**Benchmarks that failed in this run:**');
    for (const e of r.errors) L.push(`- ${e.benchmark}: \`${e.error.split('\n')[0]}\``);
  }
  L.push('');
  L.push('## Targets');
  L.push('');
  L.push('| what | target | measured | met |');
  L.push('|---|---|---|---|');
  for (const t of targets(r)) L.push(`| ${t.what} | ${t.target} | ${t.measured} | ${t.met === undefined ? '?' : t.met ? 'yes' : '**no**'} |`);

  if (r.propagation) {
    const p = r.propagation;
    L.push('');
    L.push('## 1. Propagation');
    L.push('');
    L.push(
      `From the start of the publish call (Quire: \`publisher.publish\`, etcd: \`put\`) to each subscriber's handler, on one clock (\`process.hrtime.bigint()\`, CLOCK_MONOTONIC, shared by every process). Subscribers in 2 worker processes, each with its own connection; services in their own processes. Quire's long-poll subscribers are SDK consumers with their defaults: their polls go one after another on one \`PollStream\` each (ADR 0010). Consume service change-feed poll ${p.changePollMs} ms (default)${p.changeHints === true ? ', woken at once by the publish service\'s change hints (ADR 0009, as deployed)' : ', no change hints'}. Polling consumers poll every ${num(p.pollIntervalMs)} ms ±10%, started at random phases over one interval.`,
    );
    L.push('');
    L.push('| system | subscribers | payload | first ms | p50 ms | p99 ms | max ms | publish call ms | publishes | not received |');
    L.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const row of p.rows) {
      L.push(`| ${row.system} | ${num(row.consumers)} | ${size(row.payloadBytes)} | ${row.first === undefined ? 'n/a' : fmt(row.first)} | ${fmt(row.p50)} | ${fmt(row.p99)} | ${fmt(row.max)} | ${fmt(row.callMs)} | ${row.reps.length} | ${row.reps.reduce((a, x) => a + x.missing, 0)} |`);
    }
    L.push('');
    L.push('Reference (BASELINES.md, etcd 3.4 watch, measured earlier on this kind of machine): N=100 p50 9.0 ms, p99 19.5 ms; N=1,000 p50 32.8 ms, p99 130 ms.');
    for (const row of p.rows) {
      if (row.stages === undefined || row.stages.length === 0) continue;
      L.push('');
      L.push(`### Where the time goes: ${row.system}, ${num(row.consumers)} subscribers`);
      L.push('');
      L.push(
        'Per publish, each stage in ms from the start of the publish call on the same clock (the consume service\'s stages from its stage markers, `bench/src/stage-trace.mjs`), and its delta from the stage above; median [min–max] over the publishes. A negative delta: that stage came first (a commit\'s hint reaches the consume service before the publish call, which also releases, returns).',
      );
      L.push('');
      L.push('| stage | ms from publish start | Δ ms from the stage above | publishes seen |');
      L.push('|---|---|---|---|');
      for (const st of row.stages) L.push(`| ${st.stage} | ${fmt(st.fromStart)} | ${fmt(st.delta)} | ${st.seen} / ${row.reps.length} |`);
    }
    L.push('');
    const lp = p.rows.filter((x) => x.system === 'quire long-poll' || x.system === 'etcd watch');
    const ns = [...new Set(lp.map((x) => x.consumers))];
    L.push(
      chart(
        'propagation.svg',
        barChart(
          'Propagation, publish start → handler (1 KiB)',
          'ms',
          ns.map((n) => ({
            label: `N = ${num(n)}`,
            bars: lp.filter((x) => x.consumers === n).flatMap((x) => [bar(`${x.system} p50`, x.p50), bar(`${x.system} p99`, x.p99)]),
          })),
          { log: true },
        ),
      ),
    );
  }

  if (r.poll) {
    const p = r.poll;
    L.push('');
    L.push('## 2. Poll cost');
    L.push('');
    L.push(
      `Batched no-change polls (\`waitMs: 0\`, every topic at its current version) against one consume-service process, closed loop from ${p.loadProcesses} load-generator processes, ${p.seconds} s per measurement after a 0.5 s warm-up. The limit: a bare fastify POST route and a bare grpc-js \`Poll\` method (same proto) in one Node process returning the service's own no-change answer verbatim (REST ${p.replyBytes.rest} B, gRPC ${p.replyBytes.grpc} B), measured alternately with the service.`,
    );
    L.push('');
    L.push('| transport | topics | in flight | Quire calls/s | bare calls/s | ratio | Quire p50 / p99 ms | bare p50 / p99 ms | errors |');
    L.push('|---|---|---|---|---|---|---|---|---|');
    for (const row of p.rows) {
      L.push(
        `| ${row.transport} | ${row.topics} | ${row.inflight} | ${fmt(row.quire.rps)} | ${fmt(row.bare.rps)} | ×${fmt(row.ratio)} | ${fmt(row.quire.p50)} / ${fmt(row.quire.p99)} | ${fmt(row.bare.p50)} / ${fmt(row.bare.p99)} | ${row.quire.errors + row.bare.errors} |`,
      );
    }
    L.push('');
    L.push('Reference (BASELINES.md): bare fastify POST 2 KiB JSON ≈ 35k req/s with autocannon; bare grpc-js unary 7–9.4k calls/s from one generator process.');
    L.push('');
    L.push(
      chart(
        'poll-cost.svg',
        barChart(
          'No-change poll throughput: Quire vs bare server',
          'calls/s',
          p.rows.map((row) => ({ label: `${row.transport} ${row.topics}t\n${row.inflight} in flight`, bars: [bar('Quire consume-service', row.quire.rps), bar('bare server', row.bare.rps)] })),
        ),
      ),
    );
  }

  if (r.large) {
    L.push('');
    L.push('## 3. Large payloads');
    L.push('');
    L.push(
      'SDK publish = `createPublisher().publish({ file })` (streamed over gRPC through the publish service into S3, one region); SDK direct = `createDirectUploader().publish()` (multipart straight to S3, 8 MiB parts, 4 in parallel, each read from its byte range of the file as it is sent, the file\'s SHA-256 read once beside them; then `CommitUploaded`: the service reads the object back once to check size and SHA-256); raw upload = `@aws-sdk/lib-storage` `Upload` of the same file as a stream (8 MiB parts, 4 in parallel) to the same s3proxy. SDK download = `consumer.download()` (S3 GetObject into one verified buffer); SDK downloadTo = `consumer.downloadTo(path)` (streamed through SHA-256 into a temp file, fsynced, renamed); raw = `GetObject` streamed and hashed, bytes discarded; raw to file = the same into a file through a Node write stream, fsynced (the disk work `downloadTo` does; its ratio is in brackets beside the first). Ratios are per repetition against the raw client of the same repetition (median [min–max]). Each client in a fresh process (the compiled bench worker, as a user\'s build runs the SDK); peak RSS = its VmHWM (max over repetitions).',
    );
    L.push('');
    const opt = (x: Spread | undefined, suffix = '') => (x === undefined ? '—' : `${fmt(x)}${suffix}`);
    const rssOf = (x: Spread | undefined) => (x === undefined ? '—' : num(x.max));
    L.push('| size | client | MiB/s | ratio to raw | peak RSS MiB | CPU s/GiB: client + Quire service |');
    L.push('|---|---|---|---|---|---|');
    for (const row of r.large.rows) {
      const rows: Array<[string, Spread | undefined, string, Spread | undefined, string]> = [
        ['SDK publish (via service)', row.sdkPublish, `×${fmt(row.publishRatio)}`, row.rss.sdkPublish, 'sdkPublish'],
        ['SDK direct upload', row.sdkDirect, row.directRatio === undefined ? '—' : `×${fmt(row.directRatio)}`, row.rss.sdkDirect, 'sdkDirect'],
        ['raw Upload', row.rawUpload, '×1', row.rss.rawUpload, 'rawUpload'],
        ['SDK download (buffer)', row.sdkDownload, `×${fmt(row.downloadRatio)}`, row.rss.sdkDownload, 'sdkDownload'],
        [
          'SDK downloadTo (file)',
          row.sdkDownloadTo,
          row.downloadToRatio === undefined ? '—' : `×${fmt(row.downloadToRatio)}${row.downloadToFileRatio === undefined ? '' : ` (to file: ×${fmt(row.downloadToFileRatio)})`}`,
          row.rss.sdkDownloadTo,
          'sdkDownloadTo',
        ],
        ['raw GetObject', row.rawGet, '×1', row.rss.rawGet, 'rawGet'],
        ['raw GetObject to file', row.rawGetToFile, row.rawGetToFile === undefined ? '—' : '×1 (to file)', row.rss.rawGetToFile, 'rawGetToFile'],
      ];
      for (const [name, speed, ratio, rss, key] of rows) {
        if (speed === undefined) continue;
        const c = row.cpuPerGiB?.[key];
        L.push(`| ${size(row.bytes)} | ${name} | ${opt(speed)} | ${ratio} | ${rssOf(rss)} | ${c === undefined ? '—' : `${c.client.toFixed(1)} + ${c.service.toFixed(1)}`} |`);
      }
    }
    L.push('');
    L.push(`Publish-service peak RSS (MiB, whole benchmark): ${r.large.rows.map((row) => `${size(row.bytes)} run ${num(row.publishServicePeakRss)}`).join(', ')}.`);
    L.push('');
    L.push(
      chart(
        'large.svg',
        barChart(
          'Large payloads: SDK vs raw S3',
          'MiB/s',
          r.large.rows.flatMap((row) => [
            {
              label: `${size(row.bytes)}\nupload`,
              bars: [bar('Quire SDK', row.sdkPublish), ...(row.sdkDirect ? [bar('SDK direct / to file', row.sdkDirect)] : []), bar('raw S3', row.rawUpload)],
            },
            {
              label: `${size(row.bytes)}\ndownload`,
              bars: [bar('Quire SDK', row.sdkDownload), ...(row.sdkDownloadTo ? [bar('SDK direct / to file', row.sdkDownloadTo)] : []), bar('raw S3', row.rawGet)],
            },
          ]),
        ),
      ),
    );
  }

  if (r.scale) {
    const s = r.scale;
    L.push('');
    L.push('## 4. Scale');
    L.push('');
    L.push(
      `${num(s.topics)} topics × ${s.versionsPerTopic} versions (1 KiB inline, each released globally), seeded in ${num(s.seed.seconds)} s: one topic through the Cassandra MetadataStore adapter (the publish path's LWT commit), its rows then copied for every other topic by plain CQL inserts with the name rewritten (the consume service reads the same rows either way; through the publish service the seeding alone would have taken most of the run here).`,
    );
    L.push('');
    L.push('| figure | value |');
    L.push('|---|---|');
    L.push(`| consume-service spawn → listening (ms) | ${fmt(s.startToListening)} |`);
    L.push(`| cold start: spawn → first full refresh holding every topic (ms) | ${fmt(s.coldStart)} |`);
    L.push(`| full refresh of every topic (ms) | ${fmt(s.fullRefresh)} |`);
    L.push(`| RSS with every topic loaded (MiB) | ${fmt(s.rssLoaded)} |`);
    L.push('');
    // Results with CPU figures come from runs with a fresh pair of processes per repetition.
    const fresh = s.held.quire.releaseCpuMs !== undefined;
    L.push(
      `Held long-polls: ${num(s.held.polls)} REST polls, each on its own connection, from one client process, all watching one topic; then one publish to it (Quire) or one POST /fire (bare fastify, waiters in a Set released in one pass), alternately.${
        s.held.answerBytes === undefined
          ? ' The bare server answers an empty poll answer.'
          : ` Both answer the same ${num(s.held.answerBytes)} bytes: the bare server sends a copy of a real Quire answer (one update with its 1 KiB inline).`
      }${
        fresh
          ? ' Each repetition runs on a fresh consume process and a fresh bare server process (the consume process holding every topic before the polls arrive); RSS figures are medians over the repetitions. CPU is the user + system time of the server process from the publish (Quire: hint, reload and answers) or the /fire until the last answer (10 ms ticks).'
          : ` RSS figures are medians over the repetitions; both servers keep some memory of each round's 10,000 closed connections, so the first repetition (${s.held.quire.rssHeld.runs?.[0] === undefined ? 'n/a' : num(s.held.quire.rssHeld.runs[0])} MiB Quire, ${s.held.bare.rssHeld.runs?.[0] === undefined ? 'n/a' : num(s.held.bare.rssHeld.runs[0])} MiB bare) is the cleanest.`
      }`,
    );
    L.push('');
    const cpuCol = (x: HeldSide): string => (fresh ? ` ${x.releaseCpuMs === undefined ? 'n/a' : fmt(x.releaseCpuMs)} |` : '');
    L.push(`| server | RSS idle MiB | RSS held MiB | first answered ms | all answered ms | not answered |${fresh ? ' CPU to answer all ms |' : ''}`);
    L.push(`|---|---|---|---|---|---|${fresh ? '---|' : ''}`);
    L.push(`| Quire consume-service (from publish start) | ${fmt(s.held.quire.rssIdle)} | ${fmt(s.held.quire.rssHeld)} | ${fmt(s.held.quire.firstAnsweredMs)} | ${fmt(s.held.quire.allAnsweredMs)} | ${s.held.quire.missing} |${cpuCol(s.held.quire)}`);
    L.push(`| bare fastify long-poll (from /fire) | ${fmt(s.held.bare.rssIdle)} | ${fmt(s.held.bare.rssHeld)} | ${fmt(s.held.bare.firstAnsweredMs)} | ${fmt(s.held.bare.allAnsweredMs)} | ${s.held.bare.missing} |${cpuCol(s.held.bare)}`);
    L.push('');
    L.push(`Ratio all-answered Quire / bare ×${fmt(s.held.ratio)}; release pass only (last − first answer) ×${fmt(s.held.releaseRatio)}.`);
    if (s.held.error) L.push(`\nNot every repetition completed: ${s.held.error}.`);
    L.push('');
    L.push(
      chart(
        'held.svg',
        barChart('Held long-polls: answer all after one change', 'ms', [
          { label: 'first answered', bars: [bar('Quire consume-service', s.held.quire.firstAnsweredMs), bar('bare fastify', s.held.bare.firstAnsweredMs)] },
          { label: 'all answered', bars: [bar('Quire consume-service', s.held.quire.allAnsweredMs), bar('bare fastify', s.held.bare.allAnsweredMs)] },
        ]),
      ),
    );
  }

  if (r.publish) {
    L.push('');
    L.push('## 5. Publish throughput');
    L.push('');
    L.push(`Inline 1 KiB publishes through the SDK, ${r.publish.inflight} in flight, ${r.publish.seconds} s per measurement, configurations alternated; one Cassandra node.`);
    L.push('');
    L.push('| publish processes | topics | publishes/s | p50 ms | p99 ms | errors |');
    L.push('|---|---|---|---|---|---|');
    for (const row of r.publish.rows) L.push(`| ${row.processes} | ${row.topics} | ${fmt(row.rate)} | ${fmt(row.p50)} | ${fmt(row.p99)} | ${row.errors} |`);
  }

  if (r.capacity) {
    const c = r.capacity;
    const i = c.inputs;
    L.push('');
    L.push('## 6. Capacity model');
    L.push('');
    L.push('Inputs (measured above, this run):');
    L.push('');
    L.push(`- no-change polls/s of one consume process (best of REST and gRPC at any in-flight level; the gRPC figures were load-generator bound): ${Object.entries(i.pollsPerSecond).map(([t, v]) => `${t} topics ${num(v)}/s`).join(', ')}; 7 topics uses the ${i.measuredTopics.small}-topic figure, 200 the ${i.measuredTopics.large}-topic one; instances are sized at ${i.utilisation * 100}% of that.`);
    L.push(`- memory per held long-poll ≈ ${num(i.heldKiB)} KiB (RSS held − lowest idle RSS, over the held polls); held polls validated per process: ${num(i.heldMeasured)} (more were not measured, so the model never puts more on one instance); all answered in ${num(i.releaseMs)} ms.`);
    L.push(`- Cassandra reads per consume instance when nothing changes: change feed every ${i.changePollMs} ms + a full refresh every ${i.refreshPeriodMs} ms + its duration (${num(i.refreshMs)} ms for ${num(i.topics)} topics) that lists every topic's state stamp (one read per ${num(STAMP_PAGE)} topics) and reloads 1/${SWEEP_EVERY} of the topics whatever their stamp (3 reads each; ADR 0008) ≈ ${num(readsPerInstance(i))} reads/s, whatever the fleet size; each change adds 3 reads per instance for its topic.`);
    L.push(`- 30 s polling: fleet/30 polls/s; long-poll: each consumer re-polls every ${i.longPollWaitMs / 1000} s when nothing changes (fleet/${i.longPollWaitMs / 1000} polls/s) and holds one connection.`);
    L.push('');
    L.push('| consumer instances | topics each | mode | polls/s | consume instances | bound by | Cassandra reads/s | burst after a change to a topic all watch (s) |');
    L.push('|---|---|---|---|---|---|---|---|');
    for (const row of c.rows) {
      L.push(`| ${num(row.fleet)} | ${row.topicsPerInstance} | ${row.mode} | ${num(row.pollsPerSecond)} | ${num(row.instances)} | ${row.boundBy} | ${num(row.cassandraReadsPerSecond)} | ${row.burstSeconds === undefined ? '–' : num(row.burstSeconds)} |`);
    }
    L.push('');
    L.push('Where the model stops holding:');
    L.push('');
    L.push(
      `- The Cassandra read load grows with consume instances (and topics / ${num(STAMP_PAGE)}), not with consumers: every instance lists every topic's state stamp and sweeps 1/${SWEEP_EVERY} of the topics per full refresh, and reloads a changed topic once per change. A high publish rate across many topics multiplies the last term by the instance count; the change feed itself is one read per ${i.changePollMs} ms per instance. The model counts queries; it does not measure Cassandra at that rate (one node here).`,
    );
    L.push('- Per-process figures come from a 2-core machine where the load generators, Cassandra and s3proxy share the CPU with the service; a dedicated host gives more per instance, so the instance counts are upper bounds for CPU and lower bounds for nothing.');
    L.push(`- Long-poll instance counts are set by the ${num(i.heldMeasured)} held polls per process we validated; memory alone would allow more, but file descriptors, kernel socket memory and the release burst (every consumer re-polls at once after a change) were not measured beyond that.`);
    L.push('- A change to a topic every consumer watches makes the whole fleet re-poll at once: the burst column is the time to absorb it at full CPU; at 1M consumers this is the real limit of long-poll, and jittering the re-poll (or answering the change in the held response, which Quire does, then holding the next poll) is what keeps it bounded.');
    L.push('- Network, TLS and cross-AZ latency are not modelled (loopback only).');
  }

  if (analysisPath && existsSync(analysisPath)) {
    L.push('');
    L.push(readFileSync(analysisPath, 'utf8').trim());
  }
  L.push('');
  const markdown = L.join('\n');
  writeFileSync(reportPath, markdown);
  return { markdown, charts };
}
