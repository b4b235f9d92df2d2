import DanubeMetrics
import Foundation

/// The cluster side of the simulation, on its own thread: the broker wins a leader election, is assigned its
/// topics, and every few seconds one topic moves to another broker and back; its Edge MQTT gateway ingests device
/// telemetry meanwhile, and the call sites only upstream Danube has record as they do.
struct ClusterActivity {
    let simulation: SimulatedBroker
    let edge: EdgeGateway
    let upstream: UpstreamCallSites

    func run(stop: StopFlag, done: TallyBox) {
        let broker = simulation.broker
        simulation.leaderElection.set(.noLeader)
        let owned = simulation.topics.count
        broker.assignments[.assign].increment(by: UInt64(owned))
        broker.topicsOwned.set(Double(owned))
        var elapsed = 0
        while !stop.isSet {
            Thread.sleep(forTimeInterval: 0.1)
            elapsed += 1
            edge.tick(elapsed)
            upstream.tick(elapsed)
            switch elapsed {
            case 3: simulation.leaderElection.set(.following)
            case 10: simulation.leaderElection.set(.leading)
            default: break
            }
            if elapsed % 50 == 0 {
                broker.assignments[.transfer].increment()
                broker.assignments[.unassign].increment()
                broker.topicsOwned.set(Double(owned - 1))
            } else if elapsed % 50 == 25 {
                broker.assignments[.assign].increment()
                broker.topicsOwned.set(Double(owned))
            }
        }
        // A short run still ends with an elected leader.
        simulation.leaderElection.set(.leading)
        done.add(Tally(partitions: simulation.partitions.count))
    }
}
