# syntax=docker/dockerfile:1
# The admin UI: its Vite build (apps/admin-ui → apps/admin-ui/dist, static files) served by
# unprivileged nginx (uid 101, port 8080), which proxies /api/ to the publish service
# (PUBLISH_UPSTREAM, default http://publish:7080, the compose service name). Build from the
# repository root:
#
#   docker build -f deploy/docker/admin-ui.Dockerfile -t quire/admin-ui:dev .

ARG NODE_IMAGE=node:20.19-bookworm-slim
ARG NGINX_IMAGE=nginxinc/nginx-unprivileged:1.27-alpine

# ── build: the UI's dependencies and `vite build` ─────────────────────────────────────
FROM ${NODE_IMAGE} AS build
RUN npm install -g --no-fund --no-audit pnpm@10.34.9
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
# Only the UI and the workspace packages it needs; no install scripts (nothing native is needed for a static build).
RUN pnpm install --offline --frozen-lockfile --ignore-scripts --filter "@quire/admin-ui..." \
 && pnpm --filter @quire/admin-ui build \
 && test -f apps/admin-ui/dist/index.html

# ── runtime: nginx, non-root, static files and the /api proxy ─────────────────────────
FROM ${NGINX_IMAGE} AS runtime
ENV PUBLISH_UPSTREAM=http://publish:7080
# The image renders /etc/nginx/templates/*.template into conf.d at start (envsubst of the
# variables that are set, so nginx's own $uri etc. stay as they are).
COPY deploy/docker/admin-ui.nginx.conf.template /etc/nginx/templates/default.conf.template
COPY --from=build /app/apps/admin-ui/dist /usr/share/nginx/html
USER 101
EXPOSE 8080
