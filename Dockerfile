# syntax=docker/dockerfile:1
# The audit-archiver image: the worker by default, any other command on request.
#
#   docker build -t audit-archiver .
#   docker run --rm -v "$PWD/config.yaml:/etc/audit-archiver/config.yaml:ro" \
#     -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY audit-archiver
#   docker run --rm ... audit-archiver doctor --config /etc/audit-archiver/config.yaml
#
# Debian (glibc), not Alpine: the Temporal SDK's native module (@temporalio/core-bridge)
# ships glibc builds only. In a container, set worker.http_address to 0.0.0.0:9464 so that
# /metrics and /healthz can be reached from outside it. Deployment: docs/deployment.md.
#
# NODE_IMAGE: any Debian-based Node.js 22 or 24 image (Node 20 is past its end of life),
# e.g. --build-arg NODE_IMAGE=node:24-bookworm-slim, or a digest-pinned mirror of one.

ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, in a layer of their own; the project is compiled below.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
# The image's unprivileged user (uid 1000); the root file system may be read-only.
USER node
# worker.http_address: /metrics and /healthz.
EXPOSE 9464
# Healthy while the worker polls its task queue (/healthz answers 200). It asks 127.0.0.1,
# which a worker on 0.0.0.0:9464 answers too. Other commands (doctor, archive, restore)
# serve no /healthz: run them with `docker run --no-healthcheck`. Kubernetes ignores this
# and uses the Deployment's probes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/audit-archiver.js"]
CMD ["worker", "--config", "/etc/audit-archiver/config.yaml"]
