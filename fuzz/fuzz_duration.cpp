// SPDX-License-Identifier: MIT
// Duration and rate parsing (core/engine/engineconfig.*): parseDuration() directly, and every
// setting through Settings::load() as the environment and the flags hand it text. The input
// is one value; it is tried as a duration, as each setting's environment variable and as its
// flag. Properties: an accepted duration is positive, and formatDuration() of it parses back
// to a duration less than a second away (it is a display form: it drops the milliseconds of
// durations of a minute or more and rounds shorter ones); an accepted setting loads without an error message and a refused one
// has a message; the start burst is the rate rounded up, kept within int.
#include "fuzzsupport.h"

#include "engineconfig.h"

#include <QStringDecoder>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace taskdeck;
using namespace Qt::StringLiterals;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::quietQtMessages();
    if (size > 4096)
        return 0;
    const QString text = QString::fromUtf8(fuzz::bytes(data, size));

    if (const auto d = parseDuration(text)) {
        FUZZ_CHECK(d->count() > 0);
        const QString formatted = formatDuration(*d);
        const auto again = parseDuration(formatted);
        FUZZ_CHECK(again.has_value());
        FUZZ_CHECK(again->count() > d->count() - 1000 && again->count() < d->count() + 1000);
    }
    formatDuration(std::chrono::milliseconds(qint64(size) * 7919 - 1000));
    parseBool(text);

    static const QList<Settings::Option> options = Settings::options();
    for (const Settings::Option &option : options) {
        QString error;
        QProcessEnvironment env;
        env.insert(option.variable, text);
        const auto fromEnv = Settings::load(env, {}, &error);
        FUZZ_CHECK(fromEnv.has_value() == error.isEmpty());

        QString flagError;
        const auto fromFlag = Settings::load(QProcessEnvironment(), {{option.variable, text}}, &flagError);
        FUZZ_CHECK(fromFlag.has_value() == flagError.isEmpty());
        FUZZ_CHECK(fromFlag.has_value() == fromEnv.has_value());
        if (fromEnv) {
            const EngineConfig &engine = fromEnv->engine;
            FUZZ_CHECK(engine.startRate >= 0);
            // The burst is the rate rounded up, within int (a huge rate once overflowed it).
            const double burst = std::max(1.0, std::min(std::ceil(engine.startRate), double(std::numeric_limits<int>::max())));
            FUZZ_CHECK(double(engine.startBurst) == burst);
        }
    }
    return 0;
}
