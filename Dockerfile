# One image for every flowgraph process. docker-compose.yml picks the part with its command,
# `node bin/start-service.js <gateway|workflows|content|knowledge|monitoring>`; `node bin/start.js`
# runs everything in one process (embedded PostgreSQL in /data unless database URLs are set).
#
# The image runs the output of `npm run build` (bin/build.mjs: the TypeScript transpiled to
# JavaScript in the sources' layout) with plain `node`: no tsx and no other dev dependency is
# installed, and `node` itself receives `docker stop`'s SIGTERM (no npm or shell in between).
#
# Corpus: `corpusFile` names are looked up in /app/corpus (FLOWGRAPH_CORPUS_DIR). The corpus is
# not in the build context (it lives in ../shared/corpus): mount it there (docker-compose.yml
# mounts ${FLOWGRAPH_CORPUS_HOST_DIR:-../shared/corpus} read-only), or build a derived image
# with `COPY <your corpus> /app/corpus`.

# --- build: every dependency, Prisma clients generated, TypeScript transpiled into /src/dist,
# the gateway's /monitor/ and /graphiql/ pages built with Vite into /src/dist/web/dist ---
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY bin/prisma-generate.mjs bin/
COPY prisma prisma
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# --- runtime: the built tree and production dependencies only ---
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 FLOWGRAPH_CORPUS_DIR=/app/corpus FLOWGRAPH_DATA_DIR=/data
COPY --from=build /src/dist ./
# The postinstall script sees the built tree's generated clients and generates nothing.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
  && mkdir -p /app/corpus /data && chown node:node /data
USER node
CMD ["node", "bin/start-service.js", "gateway"]
