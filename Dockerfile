# One image for every eventide role; the role is the command:
#   docker build -t eventide .
#   docker run eventide server        (or persister, archiver, dispatcher, agent; several: server,persister)
# Configuration is the environment (README "Configuration"); compose.yaml runs a whole deployment.
# node:24 (Debian) comes with curl, which the compose health checks use.
FROM node:24

WORKDIR /app
# Dependencies first, so a code change reuses this layer. The roles run TypeScript through tsx,
# so the full lockfile is installed; postinstall applies patches/.
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY . .
# The web console is built once here; at run time nothing is built or installed.
RUN node_modules/.bin/tsx scripts/build-console.ts \
 && mkdir -p /app/data && chown -R node:node /app/data

USER node
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    EVENTIDE_DATA_DIR=/app/data
EXPOSE 8080
# tsx as a loader in this one process (not the tsx CLI, which would run the role as a child):
# SIGTERM reaches eventide's own graceful shutdown.
ENTRYPOINT ["node", "--import", "tsx", "server/main.ts"]
CMD ["server"]
