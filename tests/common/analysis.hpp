// What a listener checks in rendered samples: pitch, level, onset.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <vector>

namespace spinout::test {

inline double rms(std::span<const double> x) {
    if (x.empty()) return 0;
    double s = 0;
    for (double v : x)
        s += v * v;
    return std::sqrt(s / static_cast<double>(x.size()));
}

inline double peak(std::span<const double> x) {
    double p = 0;
    for (double v : x)
        p = std::max(p, std::fabs(v));
    return p;
}

// Fundamental frequency from the upward zero crossings, interpolated between samples.
// Good for sines, saws and gently filtered tones.
inline double frequency(std::span<const double> x, double sr) {
    double first = -1, last = -1;
    int count = 0;
    // ignore small wiggles around zero: hysteresis at 10% of the peak
    const double h = 0.1 * peak(x);
    bool armed = false;
    for (std::size_t i = 1; i < x.size(); ++i) {
        if (x[i] < -h) armed = true;
        if (armed && x[i - 1] < 0 && x[i] >= 0) {
            const double t = static_cast<double>(i - 1) + (-x[i - 1]) / (x[i] - x[i - 1]);
            if (first < 0) first = t;
            last = t;
            ++count;
            armed = false;
        }
    }
    if (count < 2) return 0;
    return (count - 1) * sr / (last - first);
}

// Where a signal's energy lies: its power-weighted mean frequency, from how much the
// first difference keeps (a sine of f keeps 2 sin(pi f / sr) of its rms). Unlike zero
// crossings, not swayed by the phases of the partials.
inline double meanFrequency(std::span<const double> x, double sr) {
    if (x.size() < 2) return 0;
    std::vector<double> d(x.size() - 1);
    for (std::size_t i = 1; i < x.size(); ++i)
        d[i - 1] = x[i] - x[i - 1];
    const double r = rms(x);
    if (r == 0) return 0;
    return sr / std::numbers::pi * std::asin(std::min(1.0, rms(d) / r / 2));
}

// Fundamental of a harmonically rich tone (where a strong overtone fools zero
// crossings): the shortest lag whose autocorrelation comes within 10% of the best.
inline double pitch(std::span<const double> x, double sr, double lo = 50, double hi = 2000) {
    const auto minLag = static_cast<std::size_t>(sr / hi);
    const auto maxLag = std::min(static_cast<std::size_t>(sr / lo), x.size() / 2);
    std::vector<double> acf(maxLag + 2, 0.0);
    for (std::size_t lag = minLag; lag <= maxLag + 1; ++lag) {
        double s = 0;
        for (std::size_t i = 0; i + lag < x.size(); ++i)
            s += x[i] * x[i + lag];
        acf[lag] = s / static_cast<double>(x.size() - lag);
    }
    double best = 0;
    for (std::size_t lag = minLag + 1; lag <= maxLag; ++lag)
        best = std::max(best, acf[lag]);
    for (std::size_t lag = minLag + 1; lag <= maxLag; ++lag) {
        if (acf[lag] >= 0.9 * best && acf[lag] >= acf[lag - 1] && acf[lag] >= acf[lag + 1]) {
            const double a = acf[lag - 1], b = acf[lag], c = acf[lag + 1];
            const double denom = a - 2 * b + c;
            const double shift = denom != 0 ? 0.5 * (a - c) / denom : 0;
            return sr / (static_cast<double>(lag) + shift);
        }
    }
    return 0;
}

// First frame whose magnitude exceeds the threshold, or -1.
inline std::int64_t onset(std::span<const double> x, double threshold = 1e-9) {
    for (std::size_t i = 0; i < x.size(); ++i)
        if (std::fabs(x[i]) > threshold) return static_cast<std::int64_t>(i);
    return -1;
}

inline std::span<const double> window(const std::vector<double>& x, double sr, double from,
                                      double to) {
    const auto a = std::min(x.size(), static_cast<std::size_t>(from * sr));
    const auto b = std::min(x.size(), static_cast<std::size_t>(to * sr));
    return std::span<const double>(x).subspan(a, b - a);
}

} // namespace spinout::test
