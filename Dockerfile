# One image for Persona's processes: the api, the worker, the migration, the promotion and the
# gateway simulator differ only in their command (see docker-compose.yml).
#
# build: the repository with its dev dependencies; scripts/build-image.sh compiles each entry point
#        to JavaScript, bundles the workflow code, records its build id and installs the production
#        dependencies into /out. The image smoke test (test/integration/image.test.ts) runs this
#        stage's RUN after `COPY . .` into a fresh folder, and the run stage's command from there.
# run:   /out alone, owned by root and read-only to the `node` user that runs it: no TypeScript, no
#        tsx, no tests, no docs, no package manager.
#
# The base: Node 24 (LTS; .nvmrc and package.json engines agree), pinned by digest so that a build
# is the same build tomorrow. To move it: `docker buildx imagetools inspect node:24-bookworm-slim`
# and paste the index digest here.
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN bash scripts/build-image.sh /out

FROM ${NODE_IMAGE}
# Nothing at run time installs packages: npm, corepack and yarn go, and with them what they could fetch.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
ENV NODE_ENV=production \
    PERSONA_WORKFLOW_BUNDLE_DIR=/app/dist/workflows
WORKDIR /app
COPY --from=build --chown=root:root /out /app
USER node
# The api by default; the worker, the migration, the promotion and the simulator override the command.
EXPOSE 8080 50051 8081 4010
CMD ["node", "--max-old-space-size=192", "--enable-source-maps", "api/main.js"]
