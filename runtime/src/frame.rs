//! The frame: plain data fixed before an instance starts, saying whose
//! resources the run acts for and whose code runs. Host imports consult only
//! the frame of their own store.

use std::time::Instant;

/// How code was reached, which decides what it may touch (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The principal's own code (`/v1/eval` with a key, a user's own val).
    Own,
    /// Another user's function called as a library (`@B.f()`): no private
    /// state of anyone. Sticky: everything called from here is restricted.
    Restricted,
    /// Another user's function called as an API (`api(@B.f)`, `/v1/run`):
    /// runs as its author, JSON only.
    Api,
    /// The old unrestricted library semantics (the seed table's middle
    /// column). Never offered to users; kept so the policy can be tested
    /// against the whole table.
    Library,
}

/// Who a run acts for and whose code it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Frame {
    /// Whose resources the run acts for; `None` for an anonymous evaluation.
    pub principal: Option<String>,
    /// Whose code runs (`@me`); `None` for anonymous code.
    pub author: Option<String>,
    /// How the code was reached.
    pub mode: Mode,
    /// Nesting depth: 0 for the code a request runs, +1 per val call.
    pub depth: u32,
    /// When the whole call tree must be done.
    #[serde(skip)]
    pub deadline: Instant,
}

impl Frame {
    /// The frame of a user's own code, or of anonymous code when `user` is `None`.
    pub fn own(user: Option<&str>, deadline: Instant) -> Frame {
        Frame {
            principal: user.map(str::to_string),
            author: user.map(str::to_string),
            mode: Mode::Own,
            depth: 0,
            deadline,
        }
    }

    /// The frame of `author`'s function called as an API: it runs as its author.
    pub fn api(author: &str, depth: u32, deadline: Instant) -> Frame {
        Frame {
            principal: Some(author.to_string()),
            author: Some(author.to_string()),
            mode: Mode::Api,
            depth,
            deadline,
        }
    }

    /// The frame for a library call from this frame into `author`'s code.
    /// Calling a foreign function restricts; a restricted frame stays
    /// restricted even when it calls back into the principal's own code.
    pub fn library_call(&self, author: &str) -> Frame {
        let foreign = self.principal.as_deref() != Some(author);
        let mode = match self.mode {
            Mode::Restricted => Mode::Restricted,
            Mode::Library => Mode::Library,
            Mode::Own | Mode::Api if foreign => Mode::Restricted,
            Mode::Own | Mode::Api => Mode::Own,
        };
        Frame {
            principal: self.principal.clone(),
            author: Some(author.to_string()),
            mode,
            depth: self.depth + 1,
            deadline: self.deadline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_a_foreign_function_restricts_and_restriction_is_sticky() {
        let a = Frame::own(Some("alice"), Instant::now());
        let own = a.library_call("alice");
        assert_eq!(own.mode, Mode::Own);
        let into_bob = a.library_call("bob");
        assert_eq!((into_bob.mode, into_bob.depth), (Mode::Restricted, 1));
        assert_eq!(into_bob.principal.as_deref(), Some("alice"));
        let back_into_alice = into_bob.library_call("alice");
        assert_eq!(back_into_alice.mode, Mode::Restricted);
        assert_eq!(back_into_alice.depth, 2);
    }

    #[test]
    fn anonymous_code_calling_anyone_is_restricted() {
        let anonymous = Frame::own(None, Instant::now());
        assert_eq!(anonymous.library_call("bob").mode, Mode::Restricted);
    }
}
