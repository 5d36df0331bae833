# bootc (TypeScript). Every target installs what it needs first; run as root on Debian 12.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages the tool and its tests use (see README "What each command needs").
APT_PACKAGES := podman mmdebstrap qemu-system-x86 qemu-utils ovmf skopeo docker-registry \
	mtools fdisk dosfstools e2fsprogs btrfs-progs xfsprogs sbsigntool binutils attr cpio \
	zstd umoci systemd-boot-efi uidmap crun fuse-overlayfs util-linux mount udev kmod tmux \
	apache2-utils openssl time jq socat xorriso squashfs-tools gpgv gpg gpg-agent grub-pc-bin
DEPS_STAMP := node_modules/.deps-stamp

.PHONY: deps build dist tool-image base-image check test test-unit fixtures demo soak clean

deps: $(DEPS_STAMP)

$(DEPS_STAMP): package-lock.json Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	npm ci --no-audit --no-fund
	@touch $@

build: deps
	npm run --silent build

check: deps
	npm run --silent check

# One executable, dist/bootc: runs where no Node.js is installed (scripts/build-dist.mjs).
SEA_INPUTS := $(shell find src -name '*.ts') scripts/build-dist.mjs package.json
dist: dist/bootc
dist/bootc: $(DEPS_STAMP) $(SEA_INPUTS)
	node scripts/build-dist.mjs

# The tool layer as an image: localhost/bootc-ts:<version> and :latest (containers-storage),
# dist/bootc-ts-<version>.ociarchive. Add it to an image: COPY --from=localhost/bootc-ts:latest / /
tool-image: dist/bootc
	bash images/bootc-ts/build.sh

# The reference base image localhost/debian-bootc:12 (images/debian-bootc/Containerfile),
# built offline from a local mmdebstrap Debian; BASE=<image> builds it on another base.
base-image: tool-image
	bash images/debian-bootc/build.sh $(BASE)

fixtures: build dist/bootc
	bash fixtures/build.sh --no-cli-build

# All tiers: unit, privileged (root + loop devices), qemu. A tier that cannot run prints why
# and its tests count as skipped. The last line is "N passed, N failed, N skipped".
test: check fixtures base-image
	@mkdir -p test-results
	-npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json
	@node scripts/test-summary.mjs test-results/vitest.json

test-unit: deps
	npx vitest run test/unit

# Long runs kept out of `make test` (~40 min on 2 cores): 20 power cuts during updates, taking
# each kind of cut under SeaBIOS (GRUB) and OVMF (systemd-boot) in turn; the update
# scenario under OVMF, which `make test` runs under SeaBIOS; and the installer ISO with its
# USB-stick boot of a full kernel, which `make test` skips.
soak: check fixtures base-image
	BOOTC_TEST_FIRMWARE=alternate BOOTC_POWER_CUT_RUNS=$${BOOTC_POWER_CUT_RUNS:-20} npx vitest run qemu-tests/power-loss.test.ts
	BOOTC_TEST_FIRMWARE=uefi npx vitest run qemu-tests/upgrade.test.ts
	BOOTC_TEST_ISO_USB=1 npx vitest run qemu-tests/iso-install.test.ts

demo: fixtures
	npx tsx qemu-tests/demo.ts

clean:
	rm -rf dist test-results
