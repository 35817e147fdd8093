//! Checkpoints: how far the import of one file got, committed in the same store transaction as
//! the resources, so after a crash the checkpoint never claims more than what is durable.

/// Committed progress in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checkpoint {
    /// Nothing committed yet.
    #[default]
    Start,
    /// Everything up to and including line (NDJSON) or entry (Bundle) `pos` is committed;
    /// `offset` is the byte offset after it in the decompressed content.
    At { pos: u64, offset: u64 },
    /// The whole file is imported.
    Done,
}

/// The store key of a file's checkpoint; per tenant, since the same file may go to several.
pub fn key(tenant: &str, identity: &str) -> String {
    format!("import:{tenant}:{identity}")
}

impl Checkpoint {
    pub fn encode(self) -> String {
        match self {
            Checkpoint::Start => "start".into(),
            Checkpoint::At { pos, offset } => format!("{pos} {offset}"),
            Checkpoint::Done => "done".into(),
        }
    }

    /// Parses a stored value; anything unreadable counts as "start over", which is safe because
    /// imports are idempotent PUTs.
    pub fn decode(value: Option<&str>) -> Checkpoint {
        let Some(value) = value else {
            return Checkpoint::Start;
        };
        if value == "done" {
            return Checkpoint::Done;
        }
        let mut parts = value.split(' ').map(str::parse::<u64>);
        match (parts.next(), parts.next()) {
            (Some(Ok(pos)), Some(Ok(offset))) => Checkpoint::At { pos, offset },
            _ => Checkpoint::Start,
        }
    }

    /// The last committed position (0 when none).
    pub fn pos(self) -> u64 {
        match self {
            Checkpoint::At { pos, .. } => pos,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for c in [
            Checkpoint::Start,
            Checkpoint::Done,
            Checkpoint::At {
                pos: 12,
                offset: 3456,
            },
        ] {
            assert_eq!(Checkpoint::decode(Some(&c.encode())), c);
        }
        assert_eq!(Checkpoint::decode(None), Checkpoint::Start);
        assert_eq!(Checkpoint::decode(Some("garbage")), Checkpoint::Start);
    }
}
