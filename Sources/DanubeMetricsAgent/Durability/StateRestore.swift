import Logging

extension StateFile {
    /// Loads the saved state into an empty store at start and logs what happened: restored (with the log records
    /// applied, and why the rest of the log was not), none, or unusable (moved aside: the agent starts empty
    /// rather than not at all, and says where the file went).
    func restore(into store: AggregationStore, gate: SeriesGate, logger: Logger) {
        switch read(into: store, gate: gate) {
        case .none:
            logger.info("no saved state", metadata: ["state_file": "\(path)"])
        case .loaded(let snapshot, let path, let records, let ignored, let refused):
            // The store's own count: the base and the log records together (a base can be empty, the log not).
            logger.info("restored saved state", metadata: [
                "state_file": "\(path)", "series": "\(store.seriesCount)", "sources": "\(snapshot.sources.count)",
                "log_records": "\(records)",
            ])
            if let example = refused.min(by: { $0.key < $1.key }) {
                logger.warning("restored series refused and dropped (counted in danube_agent_series_rejected_total)", metadata: [
                    "series": "\(refused.count)", "example": "\(example.key)", "reason": "\(example.value.reason.rawValue)",
                    "detail": "\(example.value.message)",
                ])
            }
            if let ignored {
                logger.warning("the rest of the state log was not applied", metadata: ["state_log": "\(logPath)", "reason": "\(ignored)"])
            }
        case .unusable(let path, let reason, let movedTo):
            logger.error("saved state is unusable; moved aside, starting empty", metadata: [
                "state_file": "\(path)", "moved_to": "\(movedTo)", "reason": "\(reason)",
            ])
        }
    }
}
