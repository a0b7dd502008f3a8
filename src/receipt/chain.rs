//! Chain checks of `Store::check`: sequence continuity and `previous` links.

use std::collections::BTreeMap;
use std::path::Path;

use super::audit::{Head, Item, ProblemKind, Sink};
use super::store::ReceiptName;

/// Chain checks: no gap, no fork, each `previous` is the hash of the one before.
pub(super) fn check_chain(items: &[Item], sink: &mut Sink<'_>) {
    use ProblemKind as K;
    let mut by_seq: BTreeMap<u64, Vec<&Item>> = BTreeMap::new();
    for it in items {
        by_seq.entry(it.seq).or_default().push(it);
    }

    let mut expected = 1u64;
    for (&seq, group) in &by_seq {
        let first = group[0];
        if seq == 0 {
            // Schema already rejects 0; it cannot take part in the chain.
            continue;
        }
        if seq > expected {
            let msg = if seq - expected == 1 {
                format!(
                    "receipt {expected:06} is missing: the sequence jumps from {:06} to {seq:06}; a receipt was removed",
                    expected.saturating_sub(1)
                )
            } else {
                format!(
                    "receipts {expected:06} to {:06} are missing before {seq:06}; receipts were removed",
                    seq - 1
                )
            };
            sink.error(K::Gap, &first.path, Some(expected), msg);
        }
        expected = seq.saturating_add(1);
        if let [a, rest @ ..] = group.as_slice() {
            for b in rest {
                sink.error(
                    K::Fork,
                    &b.path,
                    Some(seq),
                    format!(
                        "fork: this receipt and {} both have sequence {seq:06}: two runs appended without the lock, or a receipt was copied in",
                        a.path.display()
                    ),
                );
            }
        }
        for it in group {
            check_previous(it, by_seq.get(&(seq - 1)), sink);
        }
    }
}

fn check_previous(it: &Item, before: Option<&Vec<&Item>>, sink: &mut Sink<'_>) {
    use ProblemKind as K;
    let Some(previous) = &it.previous else {
        return; // content unreadable: already reported
    };
    let seq = it.seq;
    match (seq, previous) {
        (1, None) => {}
        (1, Some(p)) => sink.error(
            K::PreviousMismatch,
            &it.path,
            Some(seq),
            format!("previous must be null for the first receipt, found {p}: receipts before it were removed or renumbered"),
        ),
        (_, None) => sink.error(
            K::PreviousMismatch,
            &it.path,
            Some(seq),
            format!("previous is null but this is receipt {seq:06}: the chain was restarted or its start removed"),
        ),
        (_, Some(p)) => {
            let Some(before) = before else {
                return; // the gap is reported
            };
            let hashes: Vec<&str> = before.iter().filter_map(|b| b.sha256.as_deref()).collect();
            if hashes.is_empty() || hashes.contains(&p.as_str()) {
                return;
            }
            sink.error(
                K::PreviousMismatch,
                &it.path,
                Some(seq),
                format!(
                    "previous hash does not match receipt {:06} (expected {}, found {p}): a receipt was altered or removed",
                    seq - 1,
                    hashes.join(" or ")
                ),
            );
        }
    }
}

/// The receipt pinned as head earlier (by its SHA-256) must still be in the
/// chain; receipts after it are fine (the chain grew since).
pub(super) fn check_head(items: &[Item], expected: &str, dir: &Path, sink: &mut Sink<'_>) {
    if items
        .iter()
        .any(|it| it.sha256.as_deref() == Some(expected))
    {
        return;
    }
    let now = items
        .iter()
        .max_by_key(|i| i.seq)
        .map_or("there are no receipts".to_string(), |h| {
            format!(
                "the head is now receipt {:06} with sha256 {}",
                h.seq,
                h.sha256.as_deref().unwrap_or("(unreadable)")
            )
        });
    sink.error(
        ProblemKind::HeadMissing,
        dir,
        None,
        format!("the expected head (sha256 {expected}) is not in the chain ({now}): receipts were removed from the end, or the chain was rewritten"),
    );
}

pub(super) fn head(items: &[Item], names: &[ReceiptName]) -> Option<Head> {
    let last = items.iter().max_by_key(|i| (i.seq, i.name_seq))?;
    let name = names
        .iter()
        .find(|n| Some(n.name.as_str()) == last.path.file_name().and_then(|f| f.to_str()))?;
    Some(Head {
        sequence: last.seq,
        run_id: name.run_id.clone(),
        path: last.path.clone(),
        sha256: last.sha256.clone()?,
    })
}
