# One image for Persona's processes: the api, the worker, the migration, the promotion and the
# gateway simulator differ only in their command (see docker-compose.yml).
#
# build: the repository with its dev dependencies; scripts/build-image.sh compiles each entry point
#        to JavaScript, bundles the workflow code, records its build id and installs the production
#        dependencies into /out (the same script the image smoke test runs, test/integration/image.test.ts).
# run:   /out alone, owned by root and read-only to the `node` user that runs it: no TypeScript, no
#        tsx, no tests, no docs.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN bash scripts/build-image.sh /out

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    PERSONA_WORKFLOW_BUNDLE_DIR=/app/dist/workflows
WORKDIR /app
COPY --from=build --chown=root:root /out /app
USER node
# The api by default; the worker, the migration, the promotion and the simulator override the command.
EXPOSE 8080 50051 8081 4010
CMD ["node", "--max-old-space-size=192", "--enable-source-maps", "api/main.js"]
