//! V11: images are pinned to a version.

use super::stack;
use crate::diag::Finding;
use crate::verify::{Ctx, Gate};

pub const PINNED: Gate = Gate {
    id: "V11",
    name: "images are pinned",
    help: "Every compose image names an explicit version tag or digest: no bare name, no `latest`, no `release` (Immich: never deploy latest).",
    subject: "compose images (stacks' `desired.compose.services`)",
    run: pinned,
};

/// The tag of an image reference (`None` when it has none), and its digest.
pub fn tag_of(image: &str) -> (Option<&str>, Option<&str>) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    // The tag follows the last ':' after the last '/', so a registry port
    // (`host:5000/img`) is not taken for a tag.
    let last = name.rsplit('/').next().unwrap_or(name);
    (last.split_once(':').map(|(_, t)| t), digest)
}

/// What is wrong with an image's pinning (V11's rule): no tag (so `latest`),
/// or a moving tag; `None` when it names a version tag or a digest.
pub fn unpinned(image: &str) -> Option<String> {
    match tag_of(image) {
        (_, Some(_)) => None,
        (None, None) => Some(format!("image `{image}` has no tag, so it means `latest`")),
        (Some(t @ ("latest" | "release" | "main" | "stable" | "nightly")), None) => {
            Some(format!("image `{image}` uses the moving tag `{t}`"))
        }
        (Some(_), None) => None,
    }
}

/// How to pin an image (the help of V11, and of V17 for a compose file's images).
pub const PIN_HELP: &str = "pin a version tag (e.g. `:v2.4.1`) or a digest (`@sha256:...`) so that plan and apply are repeatable";

fn pinned(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(c) = st.desired.as_ref().and_then(|d| d.compose.as_ref()) else {
            continue;
        };
        for (name, cs) in &c.services {
            *n += 1;
            let place = stack(i, &["desired", "compose", "services", name, "image"]);
            if let Some(message) = unpinned(&cs.image) {
                out.push(
                    Finding::error("V11", place, message)
                        .label("not pinned")
                        .help(PIN_HELP),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{tag_of, unpinned};

    #[test]
    fn tags() {
        assert_eq!(
            tag_of("ghcr.io/immich-app/immich-server:v2.4.1"),
            (Some("v2.4.1"), None)
        );
        assert_eq!(tag_of("localhost:5000/x"), (None, None));
        assert_eq!(tag_of("redis"), (None, None));
        assert_eq!(tag_of("redis@sha256:ab"), (None, Some("sha256:ab")));
    }

    #[test]
    fn pinning() {
        assert_eq!(unpinned("nginx:1.27"), None);
        assert_eq!(unpinned("pihole/pihole:latest@sha256:ab"), None);
        assert_eq!(
            unpinned("pihole/pihole:latest").as_deref(),
            Some("image `pihole/pihole:latest` uses the moving tag `latest`")
        );
        assert_eq!(
            unpinned("localhost:5000/x").as_deref(),
            Some("image `localhost:5000/x` has no tag, so it means `latest`")
        );
    }
}
