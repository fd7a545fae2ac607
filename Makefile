# failover-manager: build, test, lint, install, demo, bench.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
UNITDIR    ?= $(LIBDIR)/systemd/system
SYSCONFDIR ?= /etc
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
# The build to install: the binary and, in assets/, the man pages and completions build.rs
# generated. The default is built first; any other (the tests: ARTIFACTS=target/debug) is
# installed as it is.
ARTIFACTS  ?= target/release
CARGO      ?= cargo

.PHONY: setup build-deps build test lint fuzz install uninstall deb demo bench drill drill-etcd drill-etcd-run drill-report clean-sandboxes

# The build links libsystemd (sd-bus): libsystemd-dev, installed once if missing (root).
build-deps:
	tests/setup.sh --build

build: build-deps
	$(CARGO) build --release --locked

# What the tests use beyond a fresh Debian machine with Rust (apt and cargo packages), once:
# tests/setup.sh does nothing when everything is there.
setup:
	tests/setup.sh

# Unit tests, then the real-systemd integration tests (they boot throwaway systemd sandboxes
# and need root: a build without root lists them as ignored; under CI=true they fail instead).
test: setup
	$(CARGO) test --locked --all-targets

# Every shell script the repo holds (a shell's #! on its first line), and the libraries they
# source.
SHELL_SCRIPTS = $(shell for f in $$(git ls-files 2>/dev/null); do \
	head -n1 "$$f" 2>/dev/null | grep -qE '^\#!.*[/ ](ba)?sh$$' && echo "$$f"; done) \
	drill/lib.sh drill/report-lib.sh drill/etcd-report-auto.sh tests/sandbox-lib.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	@command -v shellcheck >/dev/null || tests/setup.sh
	shellcheck --severity=warning $(SHELL_SCRIPTS)

# The config parser against FUZZ_CASES random and mutated texts (default a million) and a list of
# inputs built to be slow, at the size limit, in an optimised build that keeps overflow checks
# (cargo-fuzz needs a nightly compiler). Fails on a panic, an answer that breaks a rule, or an
# input that takes a second; prints the timings and writes the slowest input to
# target/fuzz-slowest.yaml. `make test` runs the same properties on a few thousand texts.
FUZZ_CASES ?= 1000000
fuzz:
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --locked --profile fuzz --bin failover-manager \
		config::fuzz::fuzz_long -- --ignored --nocapture

install: $(if $(filter target/release,$(ARTIFACTS)),build)
	install -Dm755 $(ARTIFACTS)/failover-manager $(DESTDIR)$(BINDIR)/failover-manager
	install -d $(DESTDIR)$(UNITDIR)
	for u in units/*; do \
		sed 's|/usr/bin/failover-manager|$(BINDIR)/failover-manager|' "$$u" \
			>"$(DESTDIR)$(UNITDIR)/$${u##*/}" && chmod 644 "$(DESTDIR)$(UNITDIR)/$${u##*/}" || exit 1; \
	done
	install -d $(DESTDIR)$(LIBDIR)/failover-manager/checks $(DESTDIR)$(LIBDIR)/failover-manager/keepalived
	install -m755 examples/checks/* $(DESTDIR)$(LIBDIR)/failover-manager/checks/
	install -m755 examples/keepalived/notify-failover-manager $(DESTDIR)$(LIBDIR)/failover-manager/keepalived/
# The keepalived.service drop-in goes where systemd does not look: a host that wants it links
# it in (examples/keepalived/keepalived.conf says how).
	install -Dm644 examples/keepalived/keepalived.service.d/failover-manager.conf \
		$(DESTDIR)$(LIBDIR)/failover-manager/keepalived/keepalived.service.d/failover-manager.conf
	install -d -m755 $(DESTDIR)$(SYSCONFDIR)/failover-manager
	sed 's|/usr/lib/failover-manager/|$(LIBDIR)/failover-manager/|g' examples/config.yaml \
		>$(DESTDIR)$(SYSCONFDIR)/failover-manager/config.yaml.example
	chmod 644 $(DESTDIR)$(SYSCONFDIR)/failover-manager/config.yaml.example
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m644 $(ARTIFACTS)/assets/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -Dm644 $(ARTIFACTS)/assets/man/failover-manager.yaml.5 $(DESTDIR)$(MANDIR)/man5/failover-manager.yaml.5
	install -Dm644 $(ARTIFACTS)/assets/completions/failover-manager.bash $(DESTDIR)$(BASHCOMPDIR)/failover-manager
	install -Dm644 $(ARTIFACTS)/assets/completions/_failover-manager $(DESTDIR)$(ZSHCOMPDIR)/_failover-manager
	install -Dm644 $(ARTIFACTS)/assets/completions/failover-manager.fish $(DESTDIR)$(FISHCOMPDIR)/failover-manager.fish
	@echo "installed; next: write $(SYSCONFDIR)/failover-manager/config.yaml (see config.yaml.example),"
	@echo "then: systemctl daemon-reload && systemctl enable --now failover-manager.timer"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/failover-manager \
		$(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(wildcard units/*))) \
		$(DESTDIR)$(SYSCONFDIR)/failover-manager/config.yaml.example \
		$(DESTDIR)$(MANDIR)/man1/failover-manager.1 $(DESTDIR)$(MANDIR)/man1/failover-manager-*.1 \
		$(DESTDIR)$(MANDIR)/man5/failover-manager.yaml.5 \
		$(DESTDIR)$(BASHCOMPDIR)/failover-manager $(DESTDIR)$(ZSHCOMPDIR)/_failover-manager \
		$(DESTDIR)$(FISHCOMPDIR)/failover-manager.fish
	rm -rf $(DESTDIR)$(LIBDIR)/failover-manager

# The same files as a Debian package (see [package.metadata.deb] in Cargo.toml): units
# installed but never enabled or started, the example config as a conffile. Needs cargo-deb
# (cargo install cargo-deb --locked). Writes target/debian/failover-manager_VERSION-1_ARCH.deb.
deb:
	$(CARGO) deb --locked

# A takeover and a hand-back with real units, in a throwaway systemd sandbox (needs root).
demo: build-deps
	$(CARGO) build --locked
	examples/demo/demo.sh target/debug/failover-manager

# Steady-state and takeover timings against baselines measured in the same run, in a
# throwaway sandbox (needs root); rewrites BENCHMARKS.md. Measures, never asserts.
bench: build
	bench/bench.sh target/release/failover-manager

# Two sites with real keepalived in throwaway sandboxes (needs root), every keepalived fault,
# the recommended setup against the baselines in the same run; then two sites and a witness
# with a real etcd cluster, every fault a witness is for, in both of check.etcd's modes: manual
# (`drill/etcd.sh --mode manual`: a person or `failover-manager switchover` moves the key)
# and automatic (`--mode automatic`: the key on a lease, the DR site takes over on its own;
# clock-step needs libfaketime, which tests/setup.sh installs). Rewrites DRILL.md (a section
# each). Measures, never asserts (make test runs one quick round of each and asserts safety
# only). `make drill-etcd` reruns both etcd drills alone and renders DRILL.md again with the
# keepalived results already in target/ or, without them, the keepalived section DRILL.md has.
DRILL_ROUNDS ?= 4
drill: build
	drill/keepalived.sh --rounds $(DRILL_ROUNDS) --out target/drill-keepalived.tsv target/release/failover-manager
	$(MAKE) drill-etcd-run
	$(MAKE) drill-report

drill-etcd: build
	$(MAKE) drill-etcd-run
	$(MAKE) drill-report

drill-etcd-run:
	drill/etcd.sh --mode manual --rounds $(DRILL_ROUNDS) --out target/drill-etcd.tsv target/release/failover-manager
	drill/etcd.sh --mode automatic --rounds $(DRILL_ROUNDS) --out target/drill-etcd-auto.tsv target/release/failover-manager

# DRILL.md: the keepalived section (rendered from target/drill-keepalived.tsv, or the one
# DRILL.md already has), then the etcd sections, manual and automatic.
drill-report:
	{ if [ -r target/drill-keepalived.tsv ]; then \
		drill/report.sh target/drill-keepalived.tsv "drill/keepalived.sh --rounds $(DRILL_ROUNDS)"; \
	  else \
		awk '/^# Drill: two sites and a witness with etcd$$/ { exit } { l[++n] = $$0 } \
			END { while (n > 0 && l[n] == "") n--; for (i = 1; i <= n; i++) print l[i] }' DRILL.md; \
	  fi && \
	  drill/etcd-report.sh target/drill-etcd.tsv "drill/etcd.sh --mode manual --rounds $(DRILL_ROUNDS)" && \
	  drill/etcd-report.sh target/drill-etcd-auto.tsv "drill/etcd.sh --mode automatic --rounds $(DRILL_ROUNDS)" && \
	  if [ -d target/drill-pages-before ]; then \
		echo && drill/pages-report.sh target/drill-pages-before/*.pages.tsv -- target/drill-etcd*.pages.tsv; \
	  else \
		awk '/^# Pages per incident$$/ { print ""; p = 1 } p' DRILL.md; \
	  fi; \
	} >target/DRILL.md
	mv target/DRILL.md DRILL.md

# Tear down sandboxes left behind by a test run that was killed (normally there are none).
clean-sandboxes:
	tests/sandbox.sh sweep
