import Foundation

/// Line charts drawn on the server as SVG markup (no script, no style sheet of their own: the
/// portal's policy allows neither inline scripts nor inline styles, so colours are presentation
/// attributes).
enum LineChart {
    /// Colours for series, told apart in print and by colour-blind readers (Okabe–Ito).
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]

    /// One line: its name and a value (0–1) per x position, nil where there is none.
    struct Series {
        var name: String
        var values: [Double?]
    }

    static let width = 520.0, height = 240.0
    static let left = 44.0, right = 20.0, top = 12.0, bottom = 36.0

    /// An SVG of `series` over `labels` (x positions), y from 0 to 100 %. Points are circles with
    /// a `<title>` (name, label, value) that browsers show on hover; consecutive values are
    /// joined, a gap breaks the line.
    static func svg(title: String, labels: [String], series: [Series]) -> String {
        let plotW = width - left - right, plotH = height - top - bottom
        func x(_ i: Int) -> Double { labels.count <= 1 ? left + plotW / 2 : left + plotW * Double(i) / Double(labels.count - 1) }
        func y(_ v: Double) -> Double { top + plotH * (1 - min(max(v, 0), 1)) }
        func f(_ d: Double) -> String { String(format: "%.1f", d) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(title))\" class=\"chart\">"
        out += "<title>\(escape(title))</title>"
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y(tick)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(tick)))\" stroke=\"#d0d7de\" stroke-width=\"1\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(tick) + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#57606a\">\(Int(tick * 100)) %</text>"
        }
        // At most eight month labels, evenly spread, the last always shown.
        let step = max(1, Int((Double(labels.count) / 8).rounded(.up)))
        for (i, label) in labels.enumerated() where i % step == 0 || i == labels.count - 1 {
            // The first and last labels align with the plot's edges so that they are not cut off.
            let anchor = labels.count > 1 && i == 0 ? "start" : labels.count > 1 && i == labels.count - 1 ? "end" : "middle"
            out += "<text x=\"\(f(x(i)))\" y=\"\(f(height - bottom + 18))\" text-anchor=\"\(anchor)\" font-size=\"11\" fill=\"#57606a\">\(escape(label))</text>"
        }
        for (k, s) in series.enumerated() {
            let colour = palette[k % palette.count]
            var run: [String] = []
            func flush() {
                if run.count > 1 { out += "<polyline points=\"\(run.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"/>" }
                run = []
            }
            for (i, v) in s.values.enumerated() {
                guard let v else { flush(); continue }
                run.append("\(f(x(i))),\(f(y(v)))")
            }
            flush()
            for (i, v) in s.values.enumerated() {
                guard let v, i < labels.count else { continue }
                out += "<circle cx=\"\(f(x(i)))\" cy=\"\(f(y(v)))\" r=\"3.5\" fill=\"\(colour)\"><title>\(escape(s.name)) \(escape(labels[i])): \(String(format: "%.1f", v * 100)) %</title></circle>"
            }
        }
        return out + "</svg>"
    }

    /// A small square of a series' colour, for a legend written in HTML.
    static func swatch(_ index: Int) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 12 12\" width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" fill=\"\(palette[index % palette.count])\"/></svg>"
    }

    static func escape(_ s: String) -> String { APIHandler.xml(s) }
}
