//! Evaluation records (traces): one per call, nested like the call tree, each
//! saying who may see it.

use crate::frame::{Frame, Mode};
use crate::state::LogLine;
use serde::Serialize;

/// One call in a call tree: what ran, as whom, how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// What ran: `@user.val@version`, or `eval` for posted code.
    pub target: String,
    /// Whose resources the call acted for (`None`: anonymous).
    pub principal: Option<String>,
    /// Whose code ran.
    pub author: Option<String>,
    /// How it was reached.
    pub mode: Mode,
    /// Nesting depth.
    pub depth: u32,
    /// ✓ or ❌.
    pub ok: bool,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Wall time in microseconds.
    pub duration_us: u64,
    /// Console output.
    pub logs: Vec<LogLine>,
    /// Calls it made, in order.
    pub calls: Vec<Evaluation>,
    /// Who may see this record: the principal for library calls and own
    /// code, the author for API calls (`None`: nobody, anonymous code).
    pub visible_to: Option<String>,
    /// True when this is a stub of a call the viewer may not see.
    pub redacted: bool,
}

impl Evaluation {
    /// An empty record for a call about to run in `frame`.
    pub(crate) fn start(target: String, frame: &Frame) -> Evaluation {
        let visible_to = match frame.mode {
            Mode::Api => frame.author.clone(),
            _ => frame.principal.clone(),
        };
        Evaluation {
            target,
            principal: frame.principal.clone(),
            author: frame.author.clone(),
            mode: frame.mode,
            depth: frame.depth,
            ok: false,
            error: None,
            duration_us: 0,
            logs: Vec::new(),
            calls: Vec::new(),
            visible_to,
            redacted: false,
        }
    }

    /// Splits the tree into one record per viewer: each viewer's record has
    /// the calls they may not see replaced by stubs (target, ✓/❌, duration),
    /// and every such call becomes a record of its own for its viewer.
    pub fn split_by_viewer(&self) -> Vec<Evaluation> {
        let mut records = Vec::new();
        let root = self.redact_foreign(&self.visible_to, &mut records);
        records.insert(0, root);
        records
    }

    fn redact_foreign(
        &self,
        viewer: &Option<String>,
        detached: &mut Vec<Evaluation>,
    ) -> Evaluation {
        let mut copy = self.clone();
        copy.calls = self
            .calls
            .iter()
            .map(|call| {
                if &call.visible_to == viewer {
                    call.redact_foreign(viewer, detached)
                } else {
                    detached.extend(call.split_by_viewer());
                    call.stub()
                }
            })
            .collect();
        copy
    }

    fn stub(&self) -> Evaluation {
        Evaluation {
            error: None,
            logs: Vec::new(),
            calls: Vec::new(),
            redacted: true,
            ..self.clone()
        }
    }
}
