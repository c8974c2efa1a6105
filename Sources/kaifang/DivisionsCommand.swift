import ArgumentParser
import KaifangCore

/// `kaifang divisions`: the GB/T 2260 codes a manifest's `spatial` may use.
struct DivisionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "divisions",
        abstract: "The Jiangsu division codes (GB/T 2260: province, cities, counties) a manifest's spatial coverage names.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this city (its code, e.g. 320100) and its counties.") var city: String?

    func run() throws {
        var list = Divisions.all
        if let city {
            let code = try Divisions.require(city, level: .city, parameter: "--city")
            list = list.filter { $0.code == code || $0.cityCode == code && $0.level == .county }
        }
        if global.json {
            try printJSON(list.map { ["code": $0.code, "name": $0.name, "level": $0.level.rawValue, "city": $0.level == .county ? $0.cityCode ?? "" : ""] })
            return
        }
        printTable(["code", "name", "level", "in"], list.map { d in
            [d.code, d.name, d.level.rawValue, d.level == .county ? d.cityCode.flatMap(Divisions.named)?.name ?? "" : ""]
        })
    }
}
