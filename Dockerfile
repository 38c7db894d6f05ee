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
# /metrics and /healthz can be reached from outside it.

ARG NODE_IMAGE=node:20-bookworm-slim

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
USER node
EXPOSE 9464
ENTRYPOINT ["node", "bin/audit-archiver.js"]
CMD ["worker", "--config", "/etc/audit-archiver/config.yaml"]
