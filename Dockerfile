# syntax=docker/dockerfile:1
# Targets: dev (watch mode, all dependencies), prod (distroless, non-root, the production build) and verifier (the
# second service, from the same build). The prod image also carries the migrate command: run it with
# `dist/bin/migrate.js up` as the command.

FROM node:24-bookworm-slim AS base
WORKDIR /app

FROM base AS build
COPY package.json package-lock.json ./
COPY patches ./patches
# No install scripts: the build needs only esbuild, whose binary comes in its platform package, and the project's
# patches of its dependencies (patches/, applied by npm ci's postinstall elsewhere), applied here by name.
RUN npm ci --ignore-scripts --no-audit --no-fund && npx patch-package
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM base AS dev
ENV NODE_ENV=development
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY . .
USER node
# 9090: native gRPC, when GRPC_PORT=9090 (off by default).
EXPOSE 8080 9090
CMD ["node", "--watch", "src/server.ts"]

FROM gcr.io/distroless/nodejs24-debian12:nonroot AS runtime
ENV NODE_ENV=production
# V8's compile cache of the bundle, on the writable /tmp (an emptyDir in Kubernetes, kept across container
# restarts in a pod): a restart starts faster (see the README's Performance section).
ENV NODE_COMPILE_CACHE=/tmp/node-compile-cache
WORKDIR /app
# The bundle (scripts/build.ts) holds the code and every dependency but the two that read files beside their own
# modules (PGlite, Swagger UI), which it puts with what they need in dist/node_modules: no other node_modules, and
# no source maps (nothing here reads them).
COPY package.json ./
COPY --from=build /app/dist/bin/*.js ./dist/bin/
COPY --from=build /app/dist/node_modules ./dist/node_modules
COPY migrations ./migrations
USER 65532:65532

# The verifier: the same files, its own command; probes and metrics on 8081.
FROM runtime AS verifier
EXPOSE 8081
CMD ["dist/bin/verifier.js"]

# Last, so that a build without --target makes the books service.
FROM runtime AS prod
# 9090: native gRPC, when GRPC_PORT=9090 (off by default).
EXPOSE 8080 9090
# The base image's entrypoint is node; it runs as PID 1 and handles SIGTERM itself.
CMD ["dist/bin/server.js"]
