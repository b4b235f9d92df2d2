import Logging

extension StateFile {
    /// Loads the saved state into an empty store at start and logs what happened: restored (with the log records
    /// applied, and why the rest of the log was not), none, or unusable (moved aside: the agent starts empty
    /// rather than not at all, and says where the file went).
    func restore(into store: AggregationStore, logger: Logger) {
        switch read(into: store) {
        case .none:
            logger.info("no saved state", metadata: ["state_file": "\(path)"])
        case .loaded(let snapshot, let path, let records, let ignored):
            logger.info("restored saved state", metadata: [
                "state_file": "\(path)", "series": "\(snapshot.series.count)", "sources": "\(snapshot.sources.count)",
                "log_records": "\(records)",
            ])
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
