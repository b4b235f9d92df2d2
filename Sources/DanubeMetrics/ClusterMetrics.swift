/// Per broker, for the load manager.
public struct BrokerMetrics: Sendable {
    public let topicsOwned: Gauge
    public let assignments: CounterSet<AssignmentAction>

    init(_ resolver: SeriesResolver, _ id: String) throws(EmitterError) {
        topicsOwned = try resolver.gauge(.brokerTopicsOwned, [(.brokerID, id)])
        assignments = try resolver.counters(.brokerAssignments, [(.brokerID, id)], by: .action, AssignmentAction.self)
    }
}

/// The broker's leader election state as a state set: 1 for the current state, 0 for the others.
public struct LeaderElectionMetrics: Sendable {
    private let states: [LeaderState: Gauge]

    init(_ resolver: SeriesResolver) throws(EmitterError) {
        var states: [LeaderState: Gauge] = [:]
        for state in LeaderState.allCases { states[state] = try resolver.gauge(.leaderElectionState, [(.state, state.rawValue)]) }
        self.states = states
    }

    public func set(_ current: LeaderState) {
        for (state, gauge) in states { gauge.set(state == current ? 1 : 0) }
    }
}

/// RPC and retry counters. Their labels are open (method, service, component, reason) but bounded by the code:
/// resolve each combination once at the call site and keep the counter.
public struct RPCMetrics: Sendable {
    let resolver: SeriesResolver

    public func brokerRPC(method: String, outcome: Outcome) throws(EmitterError) -> Counter {
        try resolver.counter(.brokerRPC, [(.method, method), (.result, outcome.rawValue)])
    }

    /// `danube_broker_rpc_duration_seconds`: observe each call's duration in seconds.
    public func brokerRPCDuration(method: String) throws(EmitterError) -> Histogram {
        try resolver.histogram(.brokerRPCDuration, [(.method, method)])
    }

    public func adminRPC(method: String, outcome: Outcome) throws(EmitterError) -> Counter {
        try resolver.counter(.adminRPC, [(.method, method), (.result, outcome.rawValue)])
    }

    public func error(service: String, code: RPCCode) throws(EmitterError) -> Counter {
        try resolver.counter(.rpcErrors, [(.service, service), (.code, code.rawValue)])
    }

    public func clientRedirect(service: String, reason: String) throws(EmitterError) -> Counter {
        try resolver.counter(.clientRedirects, [(.service, service), (.reason, reason)])
    }

    public func retryAttempt(component: String, reason: String) throws(EmitterError) -> Counter {
        try resolver.counter(.retryAttempts, [(.component, component), (.reason, reason)])
    }
}
