//! A page's one line (`incident::page`): the host, when the incident started or how long it
//! lasted, and what a person should know first. Separate because a page goes to a person
//! outside the run's output, once per incident rather than once per run.

/// A page (`incident::page`): one line, the host and what a person should know first.
pub fn page(p: &crate::incident::Page, host: &str, now: std::time::SystemTime) -> String {
    use crate::incident::{Kind, Page};
    let at = |secs: u64| {
        humantime::format_rfc3339_seconds(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
        .to_string()
    };
    match p {
        Page::Started(i) => {
            let what = match i.kind {
                Kind::Failed => "its runs fail",
                Kind::RoleUnknown => "the role is unknown while a primary unit runs here",
                Kind::Fenced => "fenced: the role was unknown too long, the primary units stopped",
            };
            format!(
                "failover-manager: incident started on {host} at {}: {what} (exit {}); \
                 journalctl -u failover-manager.service -p err on {host} says why",
                at(i.since),
                i.exit
            )
        }
        Page::Ended(i) => {
            let lasted = match i.ended {
                Some(_) => format!(
                    ", after {}",
                    humantime::format_duration(crate::incident::lasted(i, now))
                ),
                None => String::new(),
            };
            format!(
                "failover-manager: incident ended on {host}: its runs need nobody now \
                 (the incident of {}{lasted})",
                at(i.since)
            )
        }
    }
}
