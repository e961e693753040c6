#!/bin/bash
# First boot of the parent instance: the Nitro Enclaves tools and the allocator. The EIF,
# shroud-host and the systemd units are copied by the operator (docs/deploy-nitro.md), so that
# what runs is what the operator built and checked, not something fetched here.
set -euo pipefail
dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel
cat > /etc/nitro_enclaves/allocator.yaml <<'YAML'
---
memory_mib: 2048
cpu_count: 2
YAML
systemctl enable --now nitro-enclaves-allocator.service
