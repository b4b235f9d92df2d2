/// Renders a catalog as the Markdown of `docs/CATALOG.md` (`danube-metrics-agent --print-catalog markdown`).
/// The explanations that are not per family live here; the per-family and per-label reasoning lives in the
/// catalog's notes, next to the decision it explains.
public enum CatalogDocument {
    /// Danube's spans (docs/TRACING.md), from `SpanCatalog`.
    static var spanSection: String {
        var out = "\n## Spans\n\nTraced with OpenTelemetry spans (docs/TRACING.md), named here as metric families are:\n\n| span | kind | parent | what it covers | attributes |\n| --- | --- | --- | --- | --- |\n"
        for span in SpanCatalog.spans {
            out += "| `\(span.name)` | \(span.kind) | \(span.parent) | \(span.meaning) | \(span.attributes.map { "`\($0)`" }.joined(separator: ", ")) |\n"
        }
        out += "\n| attribute | holds |\n| --- | --- |\n"
        for attribute in SpanCatalog.attributes { out += "| `\(attribute.key)` | \(attribute.meaning) |\n" }
        return out
    }

    public static func markdown(_ catalog: Catalog) -> String {
        var out = header
        // The plan's order, then areas only an operator file has.
        let areas = catalog.families.reduce(into: planAreas) { areas, family in
            if !areas.contains(family.area) { areas.append(family.area) }
        }.filter { area in catalog.families.contains { $0.area == area } }
        out += "\n## Families\n\n\(catalog.families.count) families. Labels in *italics* are optional; ~~struck~~ labels are dropped (aggregated away).\n"
        for area in areas {
            out += "\n### \(area)\n\n| family | type | unit | labels | max series |\n| --- | --- | --- | --- | --- |\n"
            for family in catalog.families where family.area == area {
                let labels = family.labels.map(labelText).joined(separator: ", ")
                out += "| `\(family.name)` | \(family.type.rawValue) | \(family.unit) | \(labels.isEmpty ? "none" : labels) | \(family.maxSeries) |\n"
            }
            for family in catalog.families where family.area == area {
                out += "\n**`\(family.name)`**: \(family.help)"
                if let buckets = family.buckets {
                    out += " Buckets: \(buckets.map(format).joined(separator: ", ")), +Inf."
                }
                if let native = family.native {
                    out += " Native buckets: schema \(native.schema), zero threshold \(format(native.zeroThreshold)), \(native.maxBuckets) buckets."
                }
                if let note = family.note { out += " \(note)" }
                out += "\n"
            }
        }
        out += "\n## Label decisions\n\nThe plan's guideline: prefer namespace, topic, subscription, partition, broker_id, provider, reliable; never unbounded ids. Where the plan's own labels break it, the catalog decides:\n\n"
        var explained = Set<String>()
        for family in catalog.families {
            for label in family.labels {
                guard let note = label.note, explained.insert("\(label.name)\u{0}\(note)").inserted else { continue }
                out += "- `\(label.name)`: \(note)\n"
            }
        }
        out += "- Forbidden on every family (refused with reason `forbidden_label`): \(catalog.forbiddenLabels.map { "`\($0)`" }.joined(separator: ", ")).\n"
        if !catalog.globalLabels.isEmpty {
            out += "- Accepted on every family (optional, kept): \(catalog.globalLabels.map { "`\($0)`" }.joined(separator: ", ")): labels an emitter puts on all its series (Danube's exporter adds `broker`).\n"
        }
        return out + spanSection + upstreamSection(catalog) + footer
    }

    /// How each name upstream Danube records maps onto the catalog and the plan.
    private static func upstreamSection(_ catalog: Catalog) -> String {
        let planned = Set(DanubeFamily.allCases.map(\.rawValue))
        var out = """

            ## Upstream names

            Danube v0.15 records \(UpstreamNames.usages.count) `danube_*` names through the `metrics` crate. The catalog \
            accepts every one with upstream's labels, so a broker switched to the Rust emitter \
            (`clients/rust/danube-metrics`, see `docs/DANUBE-INTEGRATION.md`) loses no series, even in strict mode, \
            and danube-admin's queries keep working. Where the plan has the same name, the plan's family is widened: \
            upstream's label names are added and every label is optional (upstream records `topic` as the full \
            `/namespace/topic` path without `namespace` or `partition`, and registers every name once without labels \
            at start). Names only upstream has are families of their own (area "\(UpstreamNames.area)"). Upstream's \
            histograms were exposed as summaries; here they are real histograms with the catalog's buckets.

            | upstream name | type | upstream labels | in the catalog | the plan's equivalent |
            | --- | --- | --- | --- | --- |

            """
        for usage in UpstreamNames.usages.sorted(by: { $0.name < $1.name }) {
            let labels = usage.labels.isEmpty ? "none" : usage.labels.map { "`\($0)`" }.joined(separator: ", ")
            let home = planned.contains(usage.name) ? "the plan's family, widened" : "own family"
            let equivalent = planned.contains(usage.name) ? "same name" : (usage.planEquivalent.map { "`\($0)`" } ?? "none")
            guard catalog.family(named: usage.name) != nil else { continue }
            out += "| `\(usage.name)` | \(usage.type.rawValue) | \(labels) | \(home) | \(equivalent) |\n"
        }
        return out
    }

    static let planAreas = ["Topic", "Producer", "Consumer", "Dispatcher", "WAL", "Cloud tier", "Subscription progress", "Cluster and RPC", UpstreamNames.area]

    private static func labelText(_ label: LabelSpec) -> String {
        var text = label.name
        if let values = label.values { text += "=\(values.joined(separator: "\\|"))" }
        if label.policy == .drop { return "~~\(text)~~" }
        return label.required ? text : "*\(text)*"
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private static let header = """
        # The Danube metric catalog

        <!-- Generated by `danube-metrics-agent --print-catalog markdown`; do not edit by hand. A test keeps this file in step with the catalog. -->

        The agent ships the catalog of every metric family Danube records (the broker team's metrics plan, plus \
        `danube_wal_end_offset`, plus every name Danube v0.15 records today: see Upstream names) and checks each \
        series an emitter defines against it, once, when the series is defined; updates cost nothing extra.

        ## How the agent enforces it

        - A series of a **catalogued family** must have the family's type, only its labels, every required label, \
        a value from the closed set where the label has one, and the family's exact histogram buckets. Otherwise it \
        is refused (SERIES_REFUSED with code `catalog_violation`) whatever the mode: accepting it would put off-plan \
        series into a family that dashboards, rules and limits rely on.
        - A series of a **family the catalog does not know** is refused with reason `unknown_family` in `strict` \
        mode and accepted as an uncatalogued family in `permissive` mode. **The default is `permissive`**: the \
        emitter doubles as a swift-metrics back end, and Swift code written against swift-metrics should report \
        without first editing a catalog; uncatalogued families are still capped (`--max-series-per-family`, \
        default 10,000) and may not carry forbidden labels. Run `--catalog-mode strict` where every family must be \
        planned.
        - **Labels marked dropped** are accepted and aggregated away: series that differ only in them are summed \
        into one (counters and histograms only; gauge values do not add up).
        - **Each family has a series limit**; a new series beyond it is refused with code `cardinality_limit`. \
        Series already accepted keep counting.
        - Every refused series counts once per definition in `danube_agent_series_rejected_total{family,reason}`; \
        `family` is the catalogued family, or `uncatalogued` for names the catalog does not know (so a peer \
        inventing names cannot grow the agent's own metrics). Each family and reason is logged once, with the \
        first offending series and the reason, never per update.
        - HELP text on `/metrics` is the catalog's, whatever the emitter sent.

        Reasons: `unknown_family`, `wrong_type`, `unknown_label`, `missing_label`, `bad_label_value`, \
        `forbidden_label`, `wrong_buckets`, `family_series_limit`, and, outside the catalog, `invalid_name`, \
        `reserved_name` (the `danube_agent_` prefix), `malformed`, `conflicting_definition` (an uncatalogued \
        family defined with another type or other buckets by another source).

        ## Changing it: the operator file

        `--catalog FILE` (JSON) overlays the built-in catalog: each family in the file replaces the built-in one of \
        the same name or adds a new one; `forbidden_labels` adds to the forbidden list. \
        A family needs `name`, `type` (counter, gauge, histogram) and `help`; `labels` (each with `name`, optional \
        `values`, `required` (default true), `policy` keep or drop), `buckets` (histograms), `native` (histograms: \
        `{"schema": 3, "zero_threshold": 0.03125, "max_buckets": 184}`), `max_series` (default 10,000), `unit`, `area` and `note` are optional. \
        `danube-metrics-agent --print-catalog json` prints the full catalog in that format, a starting point for \
        edits; with `--catalog FILE` it prints the merged result, so a file can be checked before a restart. The \
        agent refuses to start on a file that does not parse or breaks the catalog's own rules (counters end in \
        `_total`, histograms have increasing buckets, gauges drop no labels, ...), naming the field at fault.

        ```json
        {
          "version": 1,
          "forbidden_labels": ["tenant_id"],
          "families": [
            {
              "name": "danube_topic_messages_in_total", "type": "counter", "unit": "messages", "area": "Topic",
              "help": "Messages published to the topic.", "max_series": 5000,
              "labels": [{"name": "namespace"}, {"name": "topic"}, {"name": "partition"},
                         {"name": "producer_name", "required": false}]
            }
          ]
        }
        ```

        ## Derived series: the reliable backlog

        The plan computes `danube_topic_backlog_messages` and `danube_consumer_lag_messages` for reliable topics \
        as *WAL end − subscription progress*. The broker knows a subscription's progress and the WAL writer knows \
        the WAL end, often in different processes, so the agent computes it where both meet:

        - Inputs: `danube_wal_end_offset{namespace,topic,partition}` (offset the next appended message will get) \
        and `danube_sub_progress_offset{namespace,topic,subscription,partition}` (offset of the first message the \
        subscription has not acknowledged).
        - Output, at each scrape: for every (namespace, topic, subscription) with progress gauges, \
        `Σ over its partitions of max(0, end − progress)`, as both families with `reliable="true"`.
        - It is **derived** only when every partition with a progress gauge also has a WAL end gauge (otherwise the \
        sum would be too small and nothing is shown), and only while both gauges are visible (their sources are \
        connected or within the gauge grace period).
        - It is **reported**, not derived, whenever a source itself sets the series with the same labels: a \
        reported value always wins. Non-reliable backlog (`reliable="false"`) is always reported (the dispatcher \
        queue depth).

        ## Names ending in `_ms` and promtool

        The plan names latency histograms in milliseconds (`..._latency_ms`) while Prometheus' convention is base \
        units (`..._seconds`). The catalog keeps the plan's names, because the broker team's dashboards, alerts and \
        runbooks use them; `promtool check metrics` therefore reports, for each such family, \
        `metric names should not contain abbreviated units`. That is the only finding on a full scrape, and the test that runs promtool accepts exactly those \
        lines. An operator who wants base units can add a `_seconds` family through the operator file and record it \
        from the emitter; the agent does not rename series on the fly, since that would make `/metrics` disagree \
        with the names the emitters and dashboards use.

        """

    private static let footer = """

        ## Histogram buckets

        Latencies of in-broker work span 50 µs to 5 minutes; object-store calls 5 ms to 10 minutes; fsync batches \
        512 B to 128 MiB; uploaded objects 64 KiB to 1 GiB. Emitters must use exactly the catalog's buckets (the \
        typed Swift API does so by construction): histograms with other buckets cannot be summed across sources.

        Every latency family (`_ms`) also records **native buckets** (Prometheus native histograms, protocol version \
        3): schema 3, so each bucket is 9% wider than the one below and a quantile is off by at most 9% at any \
        value, from 2^-5 ms (31 µs, below is the zero bucket) to 2^18 ms (4.4 minutes) in 184 buckets (object-store \
        calls: 1 ms to 2^20 ms in 160). Emitters keep that window in their per-thread cells (185 more cells per \
        series and recording thread); an observation above it counts in its last bucket, a negative one in the zero \
        bucket. Scrapers that ask for protobuf (Prometheus with `--enable-feature=native-histograms`) get them beside \
        the classic buckets, which text scrapes and older dashboards keep using. A series that an emitter without \
        native buckets (protocol 1 or 2) also feeds is served with classic buckets only, since its native buckets \
        would miss those observations. An operator file that gives a latency family no `native` turns them off for \
        it: the agent then drops the native buckets emitters still send and keeps the series classic.

        """
}
