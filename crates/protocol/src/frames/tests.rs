use super::*;
use serde_json::json;

fn limits() -> Limits {
    Limits::default()
}

fn parse(body: &str) -> Result<ClientFrame, FrameError> {
    parse_client_frame(Some(body), &limits())
}

fn err(body: &str) -> FrameError {
    match parse(body) {
        Ok(frame) => panic!("expected an error for {body}, got {frame:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_action_parses() {
    let cases = [
        (json!({"action":"hello"}), Action::Hello),
        (json!({"action":"heartbeat"}), Action::Heartbeat),
        (
            json!({"action":"join","room":"lobby","since":7}),
            Action::Join {
                room: RoomName("lobby".into()),
                since: Some(7),
                epoch: None,
            },
        ),
        (
            json!({"action":"join","room":"lobby","since":7,"epoch":"9f2c41d07a3b5e68"}),
            Action::Join {
                room: RoomName("lobby".into()),
                since: Some(7),
                epoch: Some("9f2c41d07a3b5e68".into()),
            },
        ),
        (
            // A room without a stream has no epoch: "" is the same as none.
            json!({"action":"join","room":"lobby","since":0,"epoch":""}),
            Action::Join {
                room: RoomName("lobby".into()),
                since: Some(0),
                epoch: None,
            },
        ),
        (
            json!({"action":"join","room":"a.b:c-d_e@f"}),
            Action::Join {
                room: RoomName("a.b:c-d_e@f".into()),
                since: None,
                epoch: None,
            },
        ),
        (
            json!({"action":"leave","room":"lobby"}),
            Action::Leave {
                room: RoomName("lobby".into()),
            },
        ),
        (
            json!({"action":"send","room":"lobby","id":"m-1","data":{"text":"hi"}}),
            Action::Send {
                room: RoomName("lobby".into()),
                id: MessageId("m-1".into()),
                data: json!({"text":"hi"}),
                ephemeral: false,
            },
        ),
        (
            json!({"action":"send","room":"lobby","id":"m-2","data":[1,2],"ephemeral":true}),
            Action::Send {
                room: RoomName("lobby".into()),
                id: MessageId("m-2".into()),
                data: json!([1, 2]),
                ephemeral: true,
            },
        ),
        (
            json!({"action":"typing","room":"lobby","active":true}),
            Action::Typing {
                room: RoomName("lobby".into()),
                active: true,
            },
        ),
        (
            json!({"action":"direct","to":"bob","id":"d1","data":"psst"}),
            Action::Direct {
                to: "bob".into(),
                id: MessageId("d1".into()),
                data: json!("psst"),
            },
        ),
        (
            json!({"action":"history","room":"lobby","before":10,"limit":5}),
            Action::History {
                room: RoomName("lobby".into()),
                before: Some(10),
                limit: Some(5),
            },
        ),
        (
            json!({"action":"auth","token":"abc"}),
            Action::Auth {
                token: "abc".into(),
            },
        ),
    ];
    for (body, want) in cases {
        let frame = parse(&body.to_string()).unwrap();
        assert_eq!(frame.action, want, "{body}");
        assert_eq!(frame.reference, None);
    }
}

#[test]
fn ref_is_echoed_as_given() {
    let frame = parse(r#"{"action":"hello","ref":"r-1"}"#).unwrap();
    assert_eq!(frame.reference, Some(json!("r-1")));
    let frame = parse(r#"{"action":"hello","ref":42}"#).unwrap();
    assert_eq!(frame.reference, Some(json!(42)));
}

#[test]
fn errors_carry_the_ref() {
    let e = err(r#"{"action":"send","room":"bad room","id":"1","data":1,"ref":"r9"}"#);
    assert_eq!(e.code, ErrorCode::InvalidRoom);
    assert_eq!(e.reference, Some(json!("r9")));
    let e = err(r#"{"action":"nope","ref":3}"#);
    assert_eq!(e.code, ErrorCode::UnknownAction);
    assert_eq!(e.reference, Some(json!(3)));
}

#[test]
fn bad_frames_get_specific_codes() {
    let cases: &[(&str, ErrorCode, &str)] = &[
        ("", ErrorCode::InvalidFrame, "empty"),
        ("   ", ErrorCode::InvalidFrame, "empty"),
        ("{not json", ErrorCode::InvalidJson, "not valid JSON"),
        ("[1,2]", ErrorCode::InvalidFrame, "object"),
        ("\"hello\"", ErrorCode::InvalidFrame, "object"),
        ("null", ErrorCode::InvalidFrame, "object"),
        ("{}", ErrorCode::InvalidField, "action must be present"),
        (
            r#"{"action":5}"#,
            ErrorCode::InvalidField,
            "action must be a string",
        ),
        (r#"{"action":"dance"}"#, ErrorCode::UnknownAction, "dance"),
        (
            r#"{"action":"join"}"#,
            ErrorCode::InvalidField,
            "room must be present",
        ),
        (
            r#"{"action":"join","room":7}"#,
            ErrorCode::InvalidField,
            "room must be a string",
        ),
        (
            r#"{"action":"join","room":""}"#,
            ErrorCode::InvalidRoom,
            "1 to 128",
        ),
        (
            r#"{"action":"join","room":"a/b"}"#,
            ErrorCode::InvalidRoom,
            "'/'",
        ),
        (
            r#"{"action":"join","room":"pub*"}"#,
            ErrorCode::InvalidRoom,
            "'*'",
        ),
        (
            r#"{"action":"join","room":"x","since":-1}"#,
            ErrorCode::InvalidField,
            "since must be a non-negative integer",
        ),
        (
            r#"{"action":"join","room":"x","since":"3"}"#,
            ErrorCode::InvalidField,
            "since",
        ),
        (
            r#"{"action":"join","room":"x","since":1.5}"#,
            ErrorCode::InvalidField,
            "since",
        ),
        (
            r#"{"action":"join","room":"x","since":1,"epoch":7}"#,
            ErrorCode::InvalidField,
            "epoch must be an epoch as the server sent it",
        ),
        (
            r#"{"action":"join","room":"x","since":1,"epoch":"a b"}"#,
            ErrorCode::InvalidField,
            "epoch",
        ),
        (
            r#"{"action":"join","room":"x","since":1,"epoch":"ab\u0000"}"#,
            ErrorCode::InvalidField,
            "epoch",
        ),
        (
            r#"{"action":"join","room":"x","since":1,"epoch":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
            ErrorCode::InvalidField,
            "up to 64",
        ),
        (
            r#"{"action":"send","room":"x","data":1}"#,
            ErrorCode::InvalidField,
            "id must be present",
        ),
        (
            r#"{"action":"send","room":"x","id":"","data":1}"#,
            ErrorCode::InvalidId,
            "1 to 64",
        ),
        (
            r#"{"action":"send","room":"x","id":"a b","data":1}"#,
            ErrorCode::InvalidId,
            "printable",
        ),
        (
            r#"{"action":"send","room":"x","id":9,"data":1}"#,
            ErrorCode::InvalidField,
            "id must be a string",
        ),
        (
            r#"{"action":"send","room":"x","id":"1"}"#,
            ErrorCode::InvalidField,
            "data must be present",
        ),
        (
            r#"{"action":"send","room":"x","id":"1","data":1,"ephemeral":"yes"}"#,
            ErrorCode::InvalidField,
            "ephemeral must be true or false",
        ),
        (
            r#"{"action":"typing","room":"x"}"#,
            ErrorCode::InvalidField,
            "active must be present",
        ),
        (
            r#"{"action":"typing","room":"x","active":"yes"}"#,
            ErrorCode::InvalidField,
            "active must be true or false",
        ),
        (
            r#"{"action":"direct","id":"1","data":1}"#,
            ErrorCode::InvalidField,
            "to must be present",
        ),
        (
            r#"{"action":"direct","to":"","id":"1","data":1}"#,
            ErrorCode::InvalidField,
            "to must be a user id",
        ),
        (
            r#"{"action":"history","room":"x","limit":0}"#,
            ErrorCode::InvalidField,
            "limit must be between 1 and 100",
        ),
        (
            r#"{"action":"history","room":"x","limit":101}"#,
            ErrorCode::InvalidField,
            "limit",
        ),
        (
            r#"{"action":"history","room":"x","before":"z"}"#,
            ErrorCode::InvalidField,
            "before",
        ),
        (
            r#"{"action":"auth"}"#,
            ErrorCode::InvalidField,
            "token must be present",
        ),
        (
            r#"{"action":"auth","token":""}"#,
            ErrorCode::InvalidField,
            "token must be 1 to",
        ),
        (
            r#"{"action":"hello","ref":{"a":1}}"#,
            ErrorCode::InvalidField,
            "ref must be",
        ),
        (
            r#"{"action":"hello","ref":1.5}"#,
            ErrorCode::InvalidField,
            "ref must be",
        ),
    ];
    for (body, code, needle) in cases {
        let e = err(body);
        assert_eq!(e.code, *code, "{body}: {e}");
        assert!(
            e.message.contains(needle),
            "{body}: {:?} lacks {needle:?}",
            e.message
        );
    }
}

#[test]
fn empty_body_is_an_error_not_a_panic() {
    let e = parse_client_frame(None, &limits()).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidFrame);
}

#[test]
fn overlong_fields_are_rejected() {
    let l = limits();
    let room = "r".repeat(l.max_room_len + 1);
    let e = err(&json!({"action":"join","room":room}).to_string());
    assert_eq!(e.code, ErrorCode::InvalidRoom);
    let ok_room = "r".repeat(l.max_room_len);
    assert!(parse(&json!({"action":"join","room":ok_room}).to_string()).is_ok());

    let id = "i".repeat(l.max_id_len + 1);
    let e = err(&json!({"action":"send","room":"x","id":id,"data":1}).to_string());
    assert_eq!(e.code, ErrorCode::InvalidId);

    let token = "t".repeat(l.max_token_len + 1);
    assert_eq!(
        err(&json!({"action":"auth","token":token}).to_string()).code,
        ErrorCode::InvalidField
    );

    let reference = "r".repeat(MAX_REF_LEN + 1);
    assert_eq!(
        err(&json!({"action":"hello","ref":reference}).to_string()).code,
        ErrorCode::InvalidField
    );
}

#[test]
fn oversize_data_is_refused_at_the_limit() {
    let l = limits();
    // A JSON string of n characters serialises to n + 2 bytes.
    let fits = "x".repeat(l.max_data_bytes - 2);
    assert!(parse(&json!({"action":"send","room":"x","id":"1","data":fits}).to_string()).is_ok());
    let over = "x".repeat(l.max_data_bytes - 1);
    let e = err(&json!({"action":"send","room":"x","id":"1","data":over,"ref":"big"}).to_string());
    assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    assert_eq!(e.reference, Some(json!("big")));
    let e = err(
        &json!({"action":"direct","to":"bob","id":"1","data":"x".repeat(l.max_data_bytes)})
            .to_string(),
    );
    assert_eq!(e.code, ErrorCode::PayloadTooLarge);
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let frame = parse(r#"{"action":"leave","room":"x","future":true}"#).unwrap();
    assert_eq!(
        frame.action,
        Action::Leave {
            room: RoomName("x".into())
        }
    );
}

#[test]
fn server_frames_serialise_with_type_tags_and_camel_case() {
    let f = ServerFrame::Welcome {
        connection_id: "c1".into(),
        user: Sender {
            user: "u".into(),
            name: "U".into(),
        },
        exp: 10,
        limits: ClientLimits {
            max_data_bytes: 1,
            max_room_len: 2,
            max_id_len: 3,
            history_page_max: 4,
            rate_per_second: 5,
            rate_burst: 6,
            idle_timeout_secs: 7,
        },
        reference: Some(json!("r")),
    };
    let v: Value = serde_json::from_str(&f.to_json()).unwrap();
    assert_eq!(v["type"], "welcome");
    assert_eq!(v["connectionId"], "c1");
    assert_eq!(v["limits"]["maxDataBytes"], 1);
    assert_eq!(v["ref"], "r");

    let joined = ServerFrame::Joined {
        room: "x".into(),
        seq: 3,
        epoch: String::new(),
        members: None,
        member_count: None,
        roster_truncated: false,
        missed: None,
        truncated: false,
        more: false,
        reference: None,
    };
    assert_eq!(joined.to_json(), r#"{"type":"joined","room":"x","seq":3}"#);
    let capped = ServerFrame::Joined {
        room: "x".into(),
        seq: 3,
        epoch: "9f2c41d07a3b5e68".into(),
        members: Some(Vec::new()),
        member_count: Some(250),
        roster_truncated: true,
        missed: None,
        truncated: false,
        more: false,
        reference: None,
    };
    assert_eq!(
        capped.to_json(),
        r#"{"type":"joined","room":"x","seq":3,"epoch":"9f2c41d07a3b5e68","members":[],"memberCount":250,"rosterTruncated":true}"#
    );

    let e = ServerFrame::error(ErrorCode::RateLimited, "slow down", Some(json!(1)));
    assert_eq!(
        e.to_json(),
        r#"{"type":"error","code":"rate_limited","message":"slow down","ref":1}"#
    );
    let p = ServerFrame::Presence {
        room: "x".into(),
        user: "u".into(),
        name: "U".into(),
        event: PresenceEvent::Left,
    };
    assert_eq!(
        p.to_json(),
        r#"{"type":"presence","room":"x","user":"u","name":"U","event":"left"}"#
    );
}

#[test]
fn error_code_wire_names_match_as_str() {
    for code in [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidFrame,
        ErrorCode::UnknownAction,
        ErrorCode::InvalidField,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidId,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Forbidden,
        ErrorCode::NotJoined,
        ErrorCode::RateLimited,
        ErrorCode::TokenExpired,
        ErrorCode::InvalidToken,
        ErrorCode::Unavailable,
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
}

/// `edit` and `delete` name a message by its id, and its author when it is
/// not the sender's own; `replaces` is the version the client saw.
#[test]
fn changes_parse_with_their_target_and_refuse_bad_fields() {
    let edit = parse(r#"{"action":"edit","room":"r","id":"e1","message":"m1","replaces":4,"data":{"t":"fixed"},"ref":9}"#).unwrap();
    assert_eq!(edit.reference, Some(json!(9)));
    assert_eq!(
        edit.action,
        Action::Edit {
            room: RoomName("r".into()),
            id: MessageId("e1".into()),
            message: MessageId("m1".into()),
            author: None,
            replaces: Some(4),
            data: json!({"t": "fixed"}),
        }
    );
    let delete =
        parse(r#"{"action":"delete","room":"r","id":"d1","message":"m1","author":"alice"}"#)
            .unwrap();
    assert_eq!(
        delete.action,
        Action::Delete {
            room: RoomName("r".into()),
            id: MessageId("d1".into()),
            message: MessageId("m1".into()),
            author: Some("alice".into()),
        }
    );
    assert_eq!(delete.action.name(), "delete");
    for (body, code, names) in [
        (
            r#"{"action":"edit","room":"r","id":"e1","data":1,"ref":"x"}"#,
            ErrorCode::InvalidField,
            "message",
        ),
        (
            r#"{"action":"edit","room":"r","id":"e1","message":"m1","ref":"x"}"#,
            ErrorCode::InvalidField,
            "data",
        ),
        (
            r#"{"action":"edit","room":"r","id":"e1","message":"bad id!","data":1,"ref":"x"}"#,
            ErrorCode::InvalidId,
            "message",
        ),
        (
            r#"{"action":"delete","room":"r","id":"d1","message":"m1","author":" alice","ref":"x"}"#,
            ErrorCode::InvalidField,
            "author",
        ),
        (
            r#"{"action":"edit","room":"r","id":"e1","message":"m1","replaces":-1,"data":1,"ref":"x"}"#,
            ErrorCode::InvalidField,
            "replaces",
        ),
    ] {
        let e = err(body);
        assert_eq!(e.code, code, "{body}: {e:?}");
        assert!(e.message.contains(names), "{body}: {}", e.message);
        assert_eq!(e.reference, Some(json!("x")), "{body}");
    }
}
