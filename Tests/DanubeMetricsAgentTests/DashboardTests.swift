import Foundation
import Testing

/// What an operator reads on the shipped dashboards: every panel says what it shows and what is normal, in the
/// right unit; panels are grouped in rows by area; the dashboards link to each other; states read as words.
/// (PackagingTests runs every expression against a real Prometheus.)
@Suite struct DashboardTests {
    static func dashboards() throws -> [(name: String, json: [String: Any])] {
        try FileManager.default.contentsOfDirectory(at: PackagingTests.dashboards, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .map { ($0.lastPathComponent, try JSONSerialization.jsonObject(with: Data(contentsOf: $0)) as? [String: Any] ?? [:]) }
    }

    @Test func everyPanelHasADescriptionAndAUnitAndSitsInARow() throws {
        let dashboards = try Self.dashboards()
        #expect(dashboards.count == 4)
        for (name, dashboard) in dashboards {
            let panels = dashboard["panels"] as? [[String: Any]] ?? []
            #expect(panels.first?["type"] as? String == "row", "\(name): the first panel is not a row")
            #expect(panels.filter { $0["type"] as? String == "row" }.count >= 2, "\(name): fewer than two rows")
            for panel in panels where panel["type"] as? String != "row" {
                let title = panel["title"] as? String ?? "?"
                let description = panel["description"] as? String ?? ""
                #expect(description.count >= 40 && description.contains("Normal"), "\(name) / \(title): no description saying what is normal")
                let defaults = (panel["fieldConfig"] as? [String: Any])?["defaults"] as? [String: Any] ?? [:]
                let unit = defaults["unit"] as? String ?? ""
                #expect(!unit.isEmpty && unit != "short", "\(name) / \(title): no unit (or the unit-less 'short')")
                let expressions = (panel["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String }
                if expressions.contains(where: { $0.contains("cpu") }) {
                    #expect(unit.contains("cores") || unit == "percentunit", "\(name) / \(title): CPU in \(unit)")
                }
                // A 0/1 state plotted beside a quantity keeps its own unit and axis.
                let overrides = (panel["fieldConfig"] as? [String: Any])?["overrides"] as? [[String: Any]] ?? []
                for target in panel["targets"] as? [[String: Any]] ?? [] where (target["expr"] as? String ?? "").contains("_connected") && unit != "none" {
                    let ref = target["refId"] as? String ?? ""
                    #expect(overrides.contains { (($0["matcher"] as? [String: Any])?["options"] as? String) == ref }, "\(name) / \(title): a 0/1 series in \(unit)")
                }
                if panel["type"] as? String == "state-timeline" {
                    #expect(!(defaults["mappings"] as? [Any] ?? []).isEmpty, "\(name) / \(title): states without value mappings")
                }
            }
        }
    }

    @Test func theDashboardsLinkToEachOther() throws {
        for (name, dashboard) in try Self.dashboards() {
            let tags = dashboard["tags"] as? [String] ?? []
            let links = dashboard["links"] as? [[String: Any]] ?? []
            #expect(tags.contains("danube"), "\(name)")
            #expect(links.contains { ($0["type"] as? String) == "dashboards" && ($0["tags"] as? [String]) == ["danube"] && ($0["includeVars"] as? Bool) == true },
                    "\(name): no link to the other Danube dashboards (with the variables)")
        }
    }
}
