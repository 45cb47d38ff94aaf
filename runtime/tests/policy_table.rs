//! The seed post's table (SPEC §2), one test per cell, at the policy level:
//! `@A` (alice) calls `@B` (bob)'s function; the code below runs in bob's function.

use std::time::Instant;
use valbox_runtime::policy::{
    decide, Capability, Decision, Owner, PolicySettings, Request, ValState,
};
use valbox_runtime::{Frame, Mode};

const A: &str = "alice";
const B: &str = "bob";

fn frame(mode: Mode) -> Frame {
    match mode {
        Mode::Api => Frame::api(B, 1, Instant::now()),
        mode => Frame {
            principal: Some(A.into()),
            author: Some(B.into()),
            mode,
            depth: 1,
            deadline: Instant::now(),
        },
    }
}

fn ask(mode: Mode, owner: Owner<'_>, capability: Capability) -> Decision {
    decide(
        &frame(mode),
        &PolicySettings::default(),
        &Request { owner, capability },
    )
}

fn allow(user: &str) -> Decision {
    Decision::Allow(user.into())
}

macro_rules! cell {
    ($name:ident, $mode:expr, $owner:expr, $capability:expr, error) => {
        #[test]
        fn $name() {
            let decision = ask($mode, $owner, $capability);
            assert!(matches!(decision, Decision::Deny(_)), "got {decision:?}");
        }
    };
    ($name:ident, $mode:expr, $owner:expr, $capability:expr, $expected:expr) => {
        #[test]
        fn $name() {
            assert_eq!(ask($mode, $owner, $capability), $expected);
        }
    };
}

use Capability::*;
use Mode::{Api, Library, Restricted};
use Owner::{Me, Named};
use ValState::{Private, Public};

// @me.secrets.foo
cell!(api_me_secret_is_bobs, Api, Me, ReadSecret, allow(B));
cell!(
    library_me_secret_is_alices,
    Library,
    Me,
    ReadSecret,
    allow(A)
);
cell!(
    restricted_me_secret_is_undefined,
    Restricted,
    Me,
    ReadSecret,
    Decision::Undefined
);
// @A.secrets.foo
cell!(
    api_alice_secret_is_an_error,
    Api,
    Named(A),
    ReadSecret,
    error
);
cell!(
    library_alice_secret_is_alices,
    Library,
    Named(A),
    ReadSecret,
    allow(A)
);
cell!(
    restricted_alice_secret_is_undefined,
    Restricted,
    Named(A),
    ReadSecret,
    Decision::Undefined
);
// @B.secrets.foo
cell!(api_bob_secret_is_bobs, Api, Named(B), ReadSecret, allow(B));
cell!(
    library_bob_secret_is_undefined,
    Library,
    Named(B),
    ReadSecret,
    Decision::Undefined
);
cell!(
    restricted_bob_secret_is_undefined,
    Restricted,
    Named(B),
    ReadSecret,
    Decision::Undefined
);
// @me.privateFoo
cell!(api_me_private_is_bobs, Api, Me, ReadVal(Private), allow(B));
cell!(
    library_me_private_is_alices,
    Library,
    Me,
    ReadVal(Private),
    allow(A)
);
cell!(
    restricted_me_private_is_undefined,
    Restricted,
    Me,
    ReadVal(Private),
    Decision::Undefined
);
// @A.privateFoo
cell!(
    api_alice_private_is_an_error,
    Api,
    Named(A),
    ReadVal(Private),
    error
);
cell!(
    library_alice_private_is_alices,
    Library,
    Named(A),
    ReadVal(Private),
    allow(A)
);
cell!(
    restricted_alice_private_is_undefined,
    Restricted,
    Named(A),
    ReadVal(Private),
    Decision::Undefined
);
// @B.privateFoo
cell!(
    api_bob_private_is_bobs,
    Api,
    Named(B),
    ReadVal(Private),
    allow(B)
);
cell!(
    library_bob_private_is_undefined,
    Library,
    Named(B),
    ReadVal(Private),
    Decision::Undefined
);
cell!(
    restricted_bob_private_is_undefined,
    Restricted,
    Named(B),
    ReadVal(Private),
    Decision::Undefined
);
// @me.publicFoo
cell!(api_me_public_is_bobs, Api, Me, ReadVal(Public), allow(B));
cell!(
    library_me_public_is_bobs,
    Library,
    Me,
    ReadVal(Public),
    allow(B)
);
cell!(
    restricted_me_public_is_bobs,
    Restricted,
    Me,
    ReadVal(Public),
    allow(B)
);
// @A.publicFoo
cell!(
    api_alice_public_is_alices,
    Api,
    Named(A),
    ReadVal(Public),
    allow(A)
);
cell!(
    library_alice_public_is_alices,
    Library,
    Named(A),
    ReadVal(Public),
    allow(A)
);
cell!(
    restricted_alice_public_is_alices,
    Restricted,
    Named(A),
    ReadVal(Public),
    allow(A)
);
// @B.publicFoo
cell!(
    api_bob_public_is_bobs,
    Api,
    Named(B),
    ReadVal(Public),
    allow(B)
);
cell!(
    library_bob_public_is_bobs,
    Library,
    Named(B),
    ReadVal(Public),
    allow(B)
);
cell!(
    restricted_bob_public_is_bobs,
    Restricted,
    Named(B),
    ReadVal(Public),
    allow(B)
);
// @me.foo = x
cell!(api_me_write_sets_bobs, Api, Me, WriteVal, allow(B));
cell!(
    library_me_write_sets_alices,
    Library,
    Me,
    WriteVal,
    allow(A)
);
cell!(
    restricted_me_write_is_a_noop,
    Restricted,
    Me,
    WriteVal,
    Decision::NoOp
);
// @A.foo = x
cell!(api_alice_write_is_an_error, Api, Named(A), WriteVal, error);
cell!(
    library_alice_write_sets_alices,
    Library,
    Named(A),
    WriteVal,
    allow(A)
);
cell!(
    restricted_alice_write_sets_alices,
    Restricted,
    Named(A),
    WriteVal,
    allow(A)
);
// @B.foo = x
cell!(api_bob_write_sets_bobs, Api, Named(B), WriteVal, allow(B));
cell!(
    library_bob_write_is_a_noop,
    Library,
    Named(B),
    WriteVal,
    Decision::NoOp
);
cell!(
    restricted_bob_write_is_a_noop,
    Restricted,
    Named(B),
    WriteVal,
    Decision::NoOp
);
// console.email
cell!(api_email_goes_to_bob, Api, Me, SendEmail, allow(B));
cell!(
    library_email_goes_to_alice,
    Library,
    Me,
    SendEmail,
    allow(A)
);
cell!(
    restricted_email_goes_to_alice,
    Restricted,
    Me,
    SendEmail,
    allow(A)
);

#[test]
fn library_writes_deny_makes_the_callers_write_a_noop() {
    let settings = PolicySettings {
        deny_library_writes: true,
    };
    let request = Request {
        owner: Named(A),
        capability: WriteVal,
    };
    assert_eq!(
        decide(&frame(Restricted), &settings, &request),
        Decision::NoOp
    );
}

#[test]
fn a_third_users_private_state_is_out_of_reach_in_every_mode() {
    for mode in [Api, Restricted] {
        for capability in [ReadSecret, ReadVal(Private), ReadVal(ValState::Missing)] {
            let decision = ask(mode, Named("carol"), capability);
            assert!(
                matches!(decision, Decision::Deny(_) | Decision::Undefined),
                "{mode:?} {capability:?}: {decision:?}"
            );
        }
        assert!(!matches!(
            ask(mode, Named("carol"), WriteVal),
            Decision::Allow(_)
        ));
    }
}

#[test]
fn own_code_reaches_all_its_own_state_and_no_one_elses() {
    let own = Frame::own(Some(A), Instant::now());
    let settings = PolicySettings::default();
    for capability in [ReadSecret, ReadVal(Private), WriteVal] {
        let mine = decide(
            &own,
            &settings,
            &Request {
                owner: Me,
                capability,
            },
        );
        assert_eq!(mine, allow(A));
        let theirs = decide(
            &own,
            &settings,
            &Request {
                owner: Named(B),
                capability,
            },
        );
        assert!(
            matches!(theirs, Decision::Deny(_)),
            "{capability:?}: {theirs:?}"
        );
    }
    let email = decide(
        &own,
        &settings,
        &Request {
            owner: Me,
            capability: SendEmail,
        },
    );
    assert_eq!(email, allow(A));
}

#[test]
fn anonymous_code_reads_public_vals_only() {
    let anonymous = Frame::own(None, Instant::now());
    let settings = PolicySettings::default();
    let public = Request {
        owner: Named(B),
        capability: ReadVal(Public),
    };
    assert_eq!(decide(&anonymous, &settings, &public), allow(B));
    for request in [
        Request {
            owner: Named(B),
            capability: ReadVal(Private),
        },
        Request {
            owner: Named(B),
            capability: WriteVal,
        },
        Request {
            owner: Me,
            capability: ReadSecret,
        },
        Request {
            owner: Me,
            capability: WriteVal,
        },
        Request {
            owner: Me,
            capability: SendEmail,
        },
    ] {
        let decision = decide(&anonymous, &settings, &request);
        assert!(
            matches!(decision, Decision::Deny(_)),
            "{request:?}: {decision:?}"
        );
    }
}

#[test]
fn a_foreign_missing_val_is_refused_like_a_private_one() {
    let own = Frame::own(Some(A), Instant::now());
    let settings = PolicySettings::default();
    let missing = decide(
        &own,
        &settings,
        &Request {
            owner: Named(B),
            capability: ReadVal(ValState::Missing),
        },
    );
    let private = decide(
        &own,
        &settings,
        &Request {
            owner: Named(B),
            capability: ReadVal(Private),
        },
    );
    assert_eq!(
        missing, private,
        "a private val must not be told apart from a missing one"
    );
}
