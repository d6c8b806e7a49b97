use super::*;

#[test]
fn index_patterns_replace_date_fields_with_one_star() {
    assert_eq!(index_pattern("syslog-%Y.%m.%d"), "syslog-*.*.*");
    assert_eq!(index_pattern("logs-%Y%m%d%H-x"), "logs-*-x");
    assert_eq!(index_pattern("logs-sluice-default"), "logs-sluice-default");
    assert_eq!(index_pattern("a%%b"), "a%b");
}

#[test]
fn the_engine_is_read_from_the_root_answer() {
    let os = br#"{"name":"n0","version":{"distribution":"opensearch","number":"3.6.0"}}"#;
    assert_eq!(
        engine_of_root(os),
        Some(Engine {
            product: Product::OpenSearch,
            version: "3.6.0".into(),
            major: 3
        })
    );
    let es = br#"{"name":"n0","version":{"number":"8.19.21","build_flavor":"default"}}"#;
    assert_eq!(
        engine_of_root(es).map(|e| (e.product, e.major)),
        Some((Product::Elasticsearch, 8))
    );
    assert_eq!(engine_of_root(b"{\"error\":\"x\"}"), None);
}

/// `_resolve/index` as OpenSearch 3.6 and Elasticsearch 8.19 answered
/// it for a plain index, an alias, a data stream and nothing.
#[test]
fn what_holds_a_name_is_read_from_resolve_index() {
    let plain = br#"{"indices":[{"name":"plainidx","attributes":["open"]}],"aliases":[],"data_streams":[]}"#;
    assert_eq!(holder_of(plain, "plainidx"), Holder::Index);
    let alias = br#"{"indices":[],"aliases":[{"name":"aliasname","indices":["realidx"]}],"data_streams":[]}"#;
    assert_eq!(
        holder_of(alias, "aliasname"),
        Holder::Alias(vec!["realidx".into()])
    );
    let ds = br#"{"indices":[],"aliases":[],"data_streams":[{"name":"dsx","backing_indices":[".ds-dsx-000001"],"timestamp_field":"@timestamp"}]}"#;
    assert_eq!(holder_of(ds, "dsx"), Holder::DataStream);
    let none = br#"{"indices":[],"aliases":[],"data_streams":[]}"#;
    assert_eq!(holder_of(none, "x"), Holder::Nothing);
    // Another name in the answer is not this one.
    assert_eq!(holder_of(plain, "other"), Holder::Nothing);
}

/// The ILM warning names the engine detected, not always OpenSearch.
#[test]
fn the_no_ilm_warning_names_the_engine_detected() {
    let es = Engine {
        product: Product::Elasticsearch,
        version: "8.19.21".into(),
        major: 8,
    };
    let text = no_ilm_text(&es);
    assert!(
        text.starts_with("Elasticsearch 8.19.21 has no ILM"),
        "{text}"
    );
    assert!(!text.contains("OpenSearch"), "{text}");
    let os = Engine {
        product: Product::OpenSearch,
        version: "3.6.0".into(),
        major: 3,
    };
    let text = no_ilm_text(&os);
    assert!(text.starts_with("OpenSearch 3.6.0 has no ILM"), "{text}");
    assert!(text.contains("ISM"), "{text}");
    assert!(!text.contains("Elasticsearch"), "{text}");
}

/// An unversioned template not written by sluice is an operator's and
/// kept (as Logstash and Beats keep an existing template); one sluice
/// wrote, or an older version, is replaced.
#[test]
fn an_unversioned_template_of_the_operators_is_kept() {
    let answer =
        |t: &str| format!(r#"{{"index_templates":[{{"name":"t","index_template":{t}}}]}}"#);
    let index = |name: &str| Target {
        name: name.into(),
        data_stream: false,
    };
    let ds = |name: &str| Target {
        name: name.into(),
        data_stream: true,
    };
    let x = || vec!["x".to_owned()];
    let own = answer(r#"{"index_patterns":["x"]}"#);
    assert_eq!(
        installed_of(own.as_bytes(), &index("x")),
        Some(Installed::KeptUnversioned {
            covers: true,
            patterns: x()
        })
    );
    assert_eq!(
        installed_of(own.as_bytes(), &ds("x")),
        Some(Installed::KeptUnversioned {
            covers: false,
            patterns: x()
        })
    );
    let own_ds = answer(r#"{"index_patterns":["logs-*"],"data_stream":{}}"#);
    assert_eq!(
        installed_of(own_ds.as_bytes(), &ds("logs-a-b")),
        Some(Installed::KeptUnversioned {
            covers: true,
            patterns: vec!["logs-*".into()]
        })
    );
    let ours = answer(r#"{"index_patterns":["x"],"_meta":{"managed_by":"sluice"}}"#);
    assert_eq!(
        installed_of(ours.as_bytes(), &index("x")),
        Some(Installed::Updated(0))
    );
    // A current template for another data stream (another sluice's
    // sink of the same name) does not make this one.
    let newer = answer(&format!(
        r#"{{"version":{},"index_patterns":["logs-other"],"data_stream":{{}}}}"#,
        TEMPLATE_VERSION + 1
    ));
    assert_eq!(
        installed_of(newer.as_bytes(), &ds("logs-mine")),
        Some(Installed::Kept {
            version: TEMPLATE_VERSION + 1,
            covers: false,
            patterns: vec!["logs-other".into()]
        })
    );
    assert_eq!(
        installed_of(br#"{"index_templates":[]}"#, &index("x")),
        None
    );
}

/// Issue #23 defect 5: a kept template is checked against a plain
/// index too (an `index` changed since it was installed), date fields
/// as `*`; the INFO line says what was done, not `data_stream: true`.
#[test]
fn a_kept_template_is_checked_against_a_plain_index() {
    let answer =
        |t: &str| format!(r#"{{"index_templates":[{{"name":"t","index_template":{t}}}]}}"#);
    let before = answer(&format!(
        r#"{{"version":{TEMPLATE_VERSION},"index_patterns":["tmpl-before*"],"_meta":{{"managed_by":"sluice"}}}}"#
    ));
    let target = |index: &str| Target {
        name: index_pattern(index),
        data_stream: false,
    };
    let kept = installed_of(before.as_bytes(), &target("tmpl-after"));
    assert!(
        matches!(kept, Some(Installed::Kept { covers: false, .. })),
        "{kept:?}"
    );
    let dated = answer(&format!(
        r#"{{"version":{TEMPLATE_VERSION},"index_patterns":["syslog-*"]}}"#
    ));
    let kept = installed_of(dated.as_bytes(), &target("syslog-%Y.%m.%d"));
    assert!(
        matches!(kept, Some(Installed::Kept { covers: true, .. })),
        "{kept:?}"
    );
    let text = kept.map(|k| k.to_string()).unwrap_or_default();
    assert!(!text.contains("data_stream"), "{text}");
    assert!(text.starts_with("kept (version 1"), "{text}");
    assert_eq!(Installed::Created.to_string(), "created");
}

#[test]
fn index_patterns_match_like_the_engines_wildcards() {
    assert!(glob("logs-sluice-default", "logs-sluice-default"));
    assert!(!glob("logs-sluice-default", "logs-sluice-default2"));
    assert!(glob("logs-*", "logs-a-b"));
    assert!(glob("*-b", "logs-a-b"));
    assert!(glob("l*a*b", "logs-a-b"));
    assert!(glob("*", ""));
    assert!(!glob("logs-*-x", "logs-a-b"));
    assert!(!glob("a*a", "a"));
}

#[test]
fn a_held_setup_says_what_holds_the_name_and_needs_an_operator() {
    let e = SetupError::NotADataStream {
        name: "logs-a-b".into(),
        holder: "a plain index".into(),
    };
    assert!(e.needs_operator());
    assert!(
        e.to_string()
            .starts_with("data_stream \"logs-a-b\": a plain index already holds this name"),
        "{e}"
    );
    let unreachable = SetupError::Unreachable {
        url: "http://n".into(),
        message: "refused".into(),
    };
    assert!(!unreachable.needs_operator());
}
