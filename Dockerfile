# The pxeflow controller: Temporal worker + netboot services (dnsmasq DHCP, in-process TFTP/HTTP) + ipmitool.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      dnsmasq-base ipmitool iproute2 ipxe pxelinux syslinux-common ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/pxeflow
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production
ENTRYPOINT ["node", "--import", "tsx", "cli/main.ts"]
CMD ["worker"]
