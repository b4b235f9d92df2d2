import Foundation

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
public func threadCPUSeconds(named prefix: String) -> Double {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    var total = 0.0
    for task in tasks {
        guard let comm = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8), comm.hasPrefix(prefix),
              let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8) else { continue }
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        total += (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    return total
}
