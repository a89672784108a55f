# syntax=docker/dockerfile:1
# One image for Quire's Node processes: the publish service, the consume service and the
# `quire` CLI (whose `quire migrate` is the schema migration job). Which one runs is the
# command (see deploy/compose/compose.yaml and deploy/k8s/); the default is the publish
# service. Build from the repository root:
#
#   docker build -f deploy/docker/service.Dockerfile -t quire/server:dev .
#
# The apps run compiled: `pnpm build` (scripts/build.ts, esbuild) bundles each app's
# TypeScript and the workspace packages into apps/<app>/dist/main.js, run by plain `node`
# (no tsx, no TypeScript compiler at run time: ~33 MiB less RSS per process, faster start).
# npm packages stay external, loaded from the production node_modules. The same artefact is
# tested (apps/consume-service/src/compiled.int.test.ts) and benchmarked (bench/).

ARG NODE_IMAGE=node:20.19-bookworm-slim

# ── build: the workspace's production dependencies, native modules compiled ──────────
FROM ${NODE_IMAGE} AS build
# better-sqlite3 (embedded store) builds from source when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# node-gyp (the fallback build) uses the image's own Node headers instead of downloading them.
ENV npm_config_nodedir=/usr/local
# pnpm, the version package.json pins (packageManager).
RUN npm install -g --no-fund --no-audit pnpm@10.34.9
WORKDIR /app
# Only the lockfile first: `pnpm fetch` fills the store in a layer that survives source edits.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
# The full install brings esbuild (a devDependency) for `pnpm build`; the postinstall step
# generates packages/proto's TypeScript types from proto/. Then the dependencies are
# installed again with --prod (no typescript, eslint, vitest, esbuild; from the store,
# offline): the bundles import npm packages through each workspace package's node_modules
# links, which a production install lays out the same way.
RUN pnpm install --offline --frozen-lockfile \
 && pnpm build \
 && test -f apps/publish-service/dist/main.js -a -f apps/consume-service/dist/main.js -a -f apps/cli/dist/main.js \
 && find . -name node_modules -type d -prune -exec rm -rf {} + \
 && pnpm install --offline --frozen-lockfile --prod \
 && rm -rf apps/admin-ui apps/quickstart packages/test-servers/bin \
 && find . -name '*.test.ts' -not -path '*/node_modules/*' -delete

# ── runtime: node and the app, no compiler, a non-root user ──────────────────────────
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    QUIRE_HOST=0.0.0.0 \
    QUIRE_DATA_DIR=/var/lib/quire
WORKDIR /app
COPY --from=build --chown=root:root /app /app
# The `node` user (uid 1000) of the base image; it owns only the data directory.
RUN mkdir -p /var/lib/quire && chown node:node /var/lib/quire
USER 1000:1000
# REST and gRPC ports of the publish (7080, 7444) and consume (7081, 7443) services.
EXPOSE 7080 7444 7081 7443
# The processes handle SIGTERM themselves (graceful drain); node is PID 1 only in
# `docker run` without --init, where it still receives the signal.
ENTRYPOINT ["node"]
CMD ["apps/publish-service/dist/main.js"]
