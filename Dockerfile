# One image for every flowgraph process; docker-compose.yml picks the part with
# `npm run start:service -- <gateway|workflows|content|knowledge|monitoring>`.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0
COPY package.json package-lock.json ./
COPY bin/prisma-generate.mjs bin/
COPY prisma prisma
RUN npm ci
COPY . .
USER node
CMD ["npm", "run", "start:service", "--", "gateway"]
