# One image for Persona's processes: the api, the worker and the gateway simulator differ only
# in their command (see docker-compose.yml). TypeScript runs through tsx, as in development.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && npm cache clean --force
COPY . .
# The workers load the workflow code bundled once here, instead of bundling it at every start.
RUN node --import tsx scripts/bundle-workflows.ts /app/dist/workflows
ENV PERSONA_WORKFLOW_BUNDLE_DIR=/app/dist/workflows
USER node
# The api by default; the worker and the simulator override the command.
EXPOSE 8080 50051 8081 4010
CMD ["node", "--max-old-space-size=192", "--import", "tsx", "api/main.ts"]
