# Build stage: compile TypeScript with the Nest CLI (and its Swagger plugin).
FROM node:24-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled service only, as a non-root user.
FROM node:24-alpine
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 LOG_FORMAT=json
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The image's unprivileged "node" user, by number: a runtime can then verify that it is not root
# without looking the name up in the image (hadolint DL3066).
USER 1000:1000
EXPOSE 3000
# Exec form with the service's own check (it reads PORT as the service does): no shell, no wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "dist/health/healthcheck.js", "/health"]
CMD ["node", "dist/main.js"]
