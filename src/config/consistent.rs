//! The rules across keys, which no single value's visitor can check: checked once the whole
//! file is read, and said at the line of the key concerned (found in the text, as the parser
//! has no position left to give). Separate from the visitors because it runs after them, on the
//! public [`Config`]; it also records in it the shortest lease automatic mode is safe with.

use super::{Budget, Config, Source};

/// What no single value can say alone, checked once everything is read and reported at the
/// line of the key concerned: `check.etcd` needs `site`, and automatic mode needs `fence_after`
/// short enough that this site has stopped before the other may take over.
pub(super) fn consistent(c: &mut Config) -> Result<(), (&'static str, String)> {
    let Some(etcd) = c.check.etcd() else {
        return Ok(());
    };
    if etcd.cert_file.is_some() != etcd.key_file.is_some() {
        return Err((
            if etcd.cert_file.is_some() {
                "cert_file"
            } else {
                "key_file"
            },
            "check.etcd.cert_file and key_file go together (a client certificate and its key)"
                .into(),
        ));
    }
    if c.site.is_none() {
        return Err((
            "etcd",
            "check.etcd needs `site:` (this host's site, as the key names it)".into(),
        ));
    }
    let Some(ttl) = etcd.lease_ttl else {
        // Manual mode takes nothing: a key for what only automatic mode does is a mistake.
        if !etcd.candidate || etcd.before_acquire.is_some() {
            return Err((
                if etcd.candidate {
                    "before_acquire"
                } else {
                    "candidate"
                },
                "check.etcd.candidate and before_acquire are for automatic mode (lease_ttl): in \
                 manual mode no host takes the role on its own"
                    .into(),
            ));
        }
        return Ok(());
    };
    let Some(fence_after) = c.check.fence_after else {
        return Err((
            "lease_ttl",
            format!(
                "check.etcd.lease_ttl needs check.fence_after: a primary that cannot renew must \
                 stop before its lease ({}) runs out",
                humantime::format_duration(ttl)
            ),
        ));
    };
    let b = Budget::of(c, fence_after, ttl);
    if b.total() >= ttl {
        return Err(("lease_ttl", b.refusal(ttl)));
    }
    let min = b.min_ttl();
    if let Source::Etcd(e) = &mut c.check.source {
        e.min_lease_ttl = min;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::{etcd_config, parse_ok};

    #[test]
    fn check_etcd_manual_and_automatic() {
        let c = parse_ok(&etcd_config("", "", "  - app.service\n"));
        let e = c.check.etcd().expect("check.etcd");
        assert_eq!(e.endpoints.len(), 2);
        assert_eq!(e.key, "/fm/primary");
        assert_eq!(e.request_timeout, Duration::from_secs(1));
        assert!(!e.automatic());
        assert!(e.candidate);
        assert_eq!(c.check.command(), None);
        // Automatic: 10 s + 5 s to stop + 0.6 s < 30 s.
        let c = parse_ok(&etcd_config(
            "    lease_ttl: 30s\n    candidate: false\n    before_acquire: [/usr/local/bin/replica-lag-ok]\n",
            "  fence_after: 10s\n",
            "  - name: app.service\n    verify_timeout: 5s\n",
        ));
        let e = c.check.etcd().expect("check.etcd");
        assert_eq!(e.lease_ttl, Some(Duration::from_secs(30)));
        // (10 s + 5 s) × 50/49 = 15.3 s: a lease granted for 15 s would not do.
        assert_eq!(e.min_lease_ttl, Duration::from_secs(16));
        assert!(!e.candidate);
        assert_eq!(
            e.before_acquire.as_deref(),
            Some(&["/usr/local/bin/replica-lag-ok".to_owned()][..])
        );
    }
}
