# Production image. Run it with DATABASE_URL and IP_HASH_PEPPER set; without
# DATABASE_URL it starts the embedded PostgreSQL under /data, which suits a
# single machine with a volume mounted there.
FROM node:24-bookworm-slim

ENV NODE_ENV=production \
    DATA_DIR=/data \
    PORT=8080

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY migrations ./migrations
COPY locales ./locales
COPY static ./static

EXPOSE 8080
# Node.js 24 strips the TypeScript types at load; no build step is needed.
CMD ["node", "src/main.ts"]
