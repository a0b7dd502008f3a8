//! What import says about the moving tags of a compose file it copies.
//! The file is copied as it runs and never rewritten (import only adds);
//! `spine verify` warns about each unpinned image (V17, by V11's rule), and
//! import, which sees the host, names what the operator could pin it to: the
//! registry digest of the image the container runs now.

use super::read::{Project, Running};
use crate::verify::gates::{tag_of, unpinned};

/// One note per unpinned image of `text` (the project's compose file, to be
/// staged as `staged`), with the digest running now when the host has one.
pub fn notes(p: &Project, text: &str, staged: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (service, written) in file_images(text) {
        let runs: Vec<&Running> = p
            .running
            .iter()
            .flatten()
            .filter(|r| r.service == service)
            .collect();
        if runs.is_empty() {
            // Not running (or not read): the file's own text, when compose
            // fills nothing in.
            if let Some(why) = unpinned(&written).filter(|_| !written.contains('$')) {
                let seen = if p.running.is_some() {
                    "no container of it exists"
                } else {
                    "its containers could not be read"
                };
                out.push(format!(
                    "service `{service}`: {why} (spine verify warns, V17); {seen}, so no digest can be named: pin a version tag or digest in {staged}"
                ));
            }
            continue;
        }
        let mut said: Vec<(&str, &str)> = Vec::new();
        for r in runs {
            if said.contains(&(r.image.as_str(), r.id.as_str())) {
                continue;
            }
            said.push((r.image.as_str(), r.id.as_str()));
            if let Some(why) = unpinned(&r.image) {
                out.push(format!(
                    "service `{service}`: {why} (spine verify warns, V17); {}",
                    pin_to(r, staged)
                ));
            }
        }
    }
    out
}

/// What the operator can pin the image of `r` to.
fn pin_to(r: &Running, staged: &str) -> String {
    let id = if r.id.is_empty() {
        "an image whose id the host did not give".to_string()
    } else {
        format!("image {}", r.id.get(..19).unwrap_or(&r.id))
    };
    match digest_of(r) {
        Some(d) => format!(
            "the container runs {id}, pulled as `{d}`: to pin what runs now, write `{d}` (or its version tag) as the image in {staged}; import copied the file as it runs"
        ),
        None => format!(
            "the container runs {id}, which has no registry digest (built or loaded on the host): pin a version tag in {staged}; import copied the file as it runs"
        ),
    }
}

/// The registry digest of the image `r` runs, of the repository its image
/// names (`docker.io/` and `library/` need not be written).
fn digest_of(r: &Running) -> Option<&str> {
    let want = repository(&r.image);
    r.digests
        .iter()
        .find(|d| {
            d.split_once('@')
                .is_some_and(|(n, _)| repository(n) == want)
        })
        .map(String::as_str)
}

/// An image's repository without tag or digest, as docker shortens it.
fn repository(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    let name = match tag_of(name) {
        (Some(t), _) => &name[..name.len() - t.len() - 1],
        (None, _) => name,
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name)
}

/// `(service, image)` of every service of a compose file that names an image.
fn file_images(text: &str) -> Vec<(String, String)> {
    let Ok((tree, _)) = crate::source::yaml::parse(text) else {
        return Vec::new();
    };
    let json = tree.to_json();
    json["services"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, s)| Some((name.clone(), s["image"].as_str()?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(service: &str, image: &str, digests: &[&str]) -> Running {
        Running {
            service: service.into(),
            image: image.into(),
            id: format!("sha256:{}", "ab".repeat(32)),
            digests: digests.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn repositories_as_docker_shortens_them() {
        assert_eq!(repository("pihole/pihole:latest"), "pihole/pihole");
        assert_eq!(repository("docker.io/library/nginx"), "nginx");
        assert_eq!(repository("nginx@sha256:00"), "nginx");
        assert_eq!(repository("localhost:5000/x:1"), "localhost:5000/x");
    }

    #[test]
    fn the_digest_of_the_repository_the_image_names() {
        let d = format!("pihole/pihole@sha256:{}", "12".repeat(32));
        let other = format!("mirror.example/pihole@sha256:{}", "34".repeat(32));
        let r = running("pihole", "docker.io/pihole/pihole:latest", &[&other, &d]);
        assert_eq!(digest_of(&r), Some(d.as_str()));
        let r = running("pihole", "pihole/pihole:latest", &[&other]);
        assert_eq!(digest_of(&r), None);
    }
}
