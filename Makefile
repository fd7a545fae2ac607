# failover-manager: build, test, lint, install, demo, bench.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
UNITDIR    ?= $(LIBDIR)/systemd/system
SYSCONFDIR ?= /etc
CARGO      ?= cargo

.PHONY: build test lint install uninstall demo bench clean-sandboxes

build:
	$(CARGO) build --release --locked

# Unit tests, then the real-systemd integration tests (they boot throwaway systemd sandboxes
# and need root; under CI=true they fail rather than skip without it).
test:
	$(CARGO) test --locked --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

install: build
	install -Dm755 target/release/failover-manager $(DESTDIR)$(BINDIR)/failover-manager
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/bin/failover-manager|$(BINDIR)/failover-manager|' units/failover-manager.service \
		>$(DESTDIR)$(UNITDIR)/failover-manager.service
	install -m644 units/failover-manager.timer $(DESTDIR)$(UNITDIR)/failover-manager.timer
	install -d $(DESTDIR)$(LIBDIR)/failover-manager/checks
	install -m755 examples/checks/* $(DESTDIR)$(LIBDIR)/failover-manager/checks/
	install -d -m755 $(DESTDIR)$(SYSCONFDIR)/failover-manager
	install -m644 examples/config.yaml $(DESTDIR)$(SYSCONFDIR)/failover-manager/config.yaml.example
	@echo "installed; next: write $(SYSCONFDIR)/failover-manager/config.yaml (see config.yaml.example),"
	@echo "then: systemctl daemon-reload && systemctl enable --now failover-manager.timer"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/failover-manager \
		$(DESTDIR)$(UNITDIR)/failover-manager.service $(DESTDIR)$(UNITDIR)/failover-manager.timer \
		$(DESTDIR)$(SYSCONFDIR)/failover-manager/config.yaml.example
	rm -rf $(DESTDIR)$(LIBDIR)/failover-manager

# A takeover and a hand-back with real units, in a throwaway systemd sandbox (needs root).
demo:
	$(CARGO) build --locked
	examples/demo/demo.sh target/debug/failover-manager

# Tear down sandboxes left behind by a test run that was killed (normally there are none).
clean-sandboxes:
	tests/sandbox.sh sweep
