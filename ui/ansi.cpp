// SPDX-License-Identifier: MIT
#include "ansi.h"

#include <QFont>
#include <QPalette>

#include <algorithm>
#include <vector>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

constexpr char16_t kEsc = 0x1b;

bool isPlain(QStringView text)
{
    for (const QChar c : text) {
        if (c.unicode() < 0x20 && c.unicode() != u'\t')
            return false;
    }
    return true;
}

/*! The line as it is being built: characters and each one's style, and the cursor column. */
struct LineCells
{
    QString text;
    std::vector<AnsiStyle> styles;
    qsizetype column = 0;

    void put(QChar c, const AnsiStyle &style)
    {
        if (column < text.size()) {
            text[column] = c;
            styles[size_t(column)] = style;
        } else {
            while (text.size() < column) { // after an erase that left the cursor past the end
                text.append(u' ');
                styles.emplace_back();
            }
            text.append(c);
            styles.push_back(style);
        }
        ++column;
    }

    void erase(int mode)
    {
        const qsizetype size = text.size();
        if (mode == 0 || mode == 2) {
            if (column < size) {
                text.truncate(column);
                styles.resize(size_t(column));
            }
        }
        if (mode == 1 || mode == 2) {
            const qsizetype end = std::min(column + (mode == 1 ? 1 : 0), text.size());
            for (qsizetype i = 0; i < end; ++i) {
                text[i] = u' ';
                styles[size_t(i)] = AnsiStyle();
            }
        }
    }
};

/*! Where the escape sequence starting at \a i (an ESC) ends: the index after it. */
qsizetype skipEscape(QStringView raw, qsizetype i, QStringView *csiParams, QChar *csiFinal)
{
    const qsizetype n = raw.size();
    *csiFinal = QChar();
    if (i + 1 >= n)
        return n;
    const char16_t kind = raw[i + 1].unicode();
    if (kind == u'[') {
        qsizetype j = i + 2;
        const qsizetype paramStart = j;
        while (j < n && raw[j].unicode() >= 0x20 && raw[j].unicode() <= 0x3f)
            ++j; // parameter and intermediate bytes
        if (j >= n)
            return n; // unterminated: drop the rest
        const char16_t final = raw[j].unicode();
        if (final >= 0x40 && final <= 0x7e) {
            *csiParams = raw.sliced(paramStart, j - paramStart);
            *csiFinal = raw[j];
            return j + 1;
        }
        return j; // malformed: drop what was read, keep the odd character's fate to the caller
    }
    if (kind == u']' || kind == u'P' || kind == u'_' || kind == u'^') {
        // OSC and other strings: up to BEL or ST (ESC \).
        for (qsizetype j = i + 2; j < n; ++j) {
            if (raw[j].unicode() == 0x07)
                return j + 1;
            if (raw[j].unicode() == kEsc && j + 1 < n && raw[j + 1] == u'\\')
                return j + 2;
        }
        return n;
    }
    // ESC, intermediates (such as the '(' of a charset choice), then one final character.
    qsizetype j = i + 1;
    while (j < n && raw[j].unicode() >= 0x20 && raw[j].unicode() <= 0x2f)
        ++j;
    return std::min(j + 1, n);
}

int paramValue(QStringView p)
{
    if (p.isEmpty())
        return 0;
    bool ok = false;
    const int v = p.toInt(&ok);
    return ok ? v : -1;
}

QColor mix(const QColor &a, const QColor &b, double t)
{
    return QColor::fromRgbF(float(a.redF() * (1 - t) + b.redF() * t),
                            float(a.greenF() * (1 - t) + b.greenF() * t),
                            float(a.blueF() * (1 - t) + b.blueF() * t));
}

constexpr std::array<QRgb, 16> kLightBase = {
    0x1e1e1e, 0xc01c28, 0x1a7f37, 0x9a6700, 0x1c57c9, 0x9a35b8, 0x0f7d8c, 0x6e7781,
    0x57606a, 0xe01b24, 0x2da44e, 0xb7791f, 0x3a7bd5, 0xbf3989, 0x1b9aaa, 0x8c959f,
};
constexpr std::array<QRgb, 16> kDarkBase = {
    0x6b717d, 0xf0645a, 0x8bd06b, 0xe5c07b, 0x61afef, 0xc678dd, 0x56b6c2, 0xd0d4da,
    0x8b919c, 0xff7b72, 0xa5e075, 0xf2d479, 0x79c0ff, 0xe29cf0, 0x7ee3ee, 0xffffff,
};

} // namespace

AnsiColor AnsiColor::indexed(int index)
{
    AnsiColor c;
    c.kind = Kind::Indexed;
    c.index = quint8(std::clamp(index, 0, 255));
    return c;
}

AnsiColor AnsiColor::fromRgb(int r, int g, int b)
{
    AnsiColor c;
    c.kind = Kind::Rgb;
    c.rgb = qRgb(std::clamp(r, 0, 255), std::clamp(g, 0, 255), std::clamp(b, 0, 255));
    return c;
}

AnsiLine AnsiParser::parseLine(const QString &raw)
{
    if (isPlain(raw)) {
        AnsiLine line{raw, {}};
        if (!m_state.isDefault() && !raw.isEmpty())
            line.spans.append({0, int(raw.size()), m_state});
        return line;
    }

    LineCells cells;
    const qsizetype n = raw.size();
    for (qsizetype i = 0; i < n;) {
        const char16_t c = raw[i].unicode();
        if (c == kEsc) {
            QStringView params;
            QChar final;
            const qsizetype next = skipEscape(raw, i, &params, &final);
            if (final == u'm' && (params.isEmpty() || params[0].unicode() < u'<'))
                applySgr(params);
            else if (final == u'K' && (params.isEmpty() || params[0].isDigit()))
                cells.erase(paramValue(params));
            i = next;
            continue;
        }
        if (c == u'\r') {
            qsizetype j = i + 1;
            while (j < n && raw[j].unicode() == u'\r')
                ++j;
            if (j < n) // one at the very end closes the line, as in \r\n
                cells.column = 0;
            i = j;
            continue;
        }
        if (c == u'\b') {
            cells.column = std::max<qsizetype>(0, cells.column - 1);
        } else if (c >= 0x20 || c == u'\t') {
            cells.put(raw[i], m_state);
        }
        ++i;
    }

    AnsiLine line;
    line.text = cells.text;
    const auto size = qsizetype(cells.styles.size());
    for (qsizetype start = 0; start < size;) {
        qsizetype end = start + 1;
        while (end < size && cells.styles[size_t(end)] == cells.styles[size_t(start)])
            ++end;
        const AnsiStyle &style = cells.styles[size_t(start)];
        if (!style.isDefault())
            line.spans.append({int(start), int(end - start), style});
        start = end;
    }
    if (line.spans.size() == 0)
        return line;
    // Spans cover the whole text: fill the default-style gaps.
    QList<AnsiSpan> covered;
    covered.reserve(line.spans.size() * 2 + 1);
    int at = 0;
    for (const AnsiSpan &span : std::as_const(line.spans)) {
        if (span.start > at)
            covered.append({at, span.start - at, AnsiStyle()});
        covered.append(span);
        at = span.start + span.length;
    }
    if (at < line.text.size())
        covered.append({at, int(line.text.size()) - at, AnsiStyle()});
    line.spans = std::move(covered);
    return line;
}

void AnsiParser::applySgr(QStringView params)
{
    QList<int> codes;
    for (QStringView p : params.split(u';'))
        codes.append(paramValue(p.split(u':').constFirst()));
    if (codes.isEmpty())
        codes.append(0);

    // Reads an extended colour (38/48) at codes[i]; returns how many codes it used.
    const auto extended = [&codes](qsizetype i, AnsiColor *out) -> qsizetype {
        if (i + 1 >= codes.size())
            return codes.size() - i;
        if (codes[i + 1] == 5 && i + 2 < codes.size()) {
            if (codes[i + 2] >= 0 && codes[i + 2] <= 255)
                *out = AnsiColor::indexed(codes[i + 2]);
            return 3;
        }
        if (codes[i + 1] == 2 && i + 4 < codes.size()) {
            *out = AnsiColor::fromRgb(codes[i + 2], codes[i + 3], codes[i + 4]);
            return 5;
        }
        return codes.size() - i; // malformed: the rest means nothing
    };

    for (qsizetype i = 0; i < codes.size();) {
        const int code = codes[i];
        qsizetype used = 1;
        switch (code) {
        case 0: m_state = AnsiStyle(); break;
        case 1: m_state.bold = true; break;
        case 2: m_state.dim = true; break;
        case 3: m_state.italic = true; break;
        case 4: case 21: m_state.underline = true; break;
        case 7: m_state.inverse = true; break;
        case 9: m_state.strike = true; break;
        case 22: m_state.bold = false; m_state.dim = false; break;
        case 23: m_state.italic = false; break;
        case 24: m_state.underline = false; break;
        case 27: m_state.inverse = false; break;
        case 29: m_state.strike = false; break;
        case 38: used = extended(i, &m_state.foreground); break;
        case 39: m_state.foreground = AnsiColor(); break;
        case 48: used = extended(i, &m_state.background); break;
        case 49: m_state.background = AnsiColor(); break;
        default:
            if (code >= 30 && code <= 37)
                m_state.foreground = AnsiColor::indexed(code - 30);
            else if (code >= 90 && code <= 97)
                m_state.foreground = AnsiColor::indexed(code - 90 + 8);
            else if (code >= 40 && code <= 47)
                m_state.background = AnsiColor::indexed(code - 40);
            else if (code >= 100 && code <= 107)
                m_state.background = AnsiColor::indexed(code - 100 + 8);
            break; // anything else (blink, fonts, ...) is ignored
        }
        i += used;
    }
}

AnsiPalette::AnsiPalette(bool dark, const std::array<QRgb, 16> &base16, const QColor &text,
                         const QColor &base)
    : m_dark(dark)
    , m_base16(base16)
    , m_text(text)
    , m_base(base)
{
}

AnsiPalette AnsiPalette::light(const QColor &text, const QColor &base)
{
    return AnsiPalette(false, kLightBase, text, base);
}

AnsiPalette AnsiPalette::dark(const QColor &text, const QColor &base)
{
    return AnsiPalette(true, kDarkBase, text, base);
}

AnsiPalette AnsiPalette::forPalette(const QPalette &palette)
{
    const QColor base = palette.color(QPalette::Base);
    const QColor text = palette.color(QPalette::Text);
    return base.lightnessF() < 0.5 ? dark(text, base) : light(text, base);
}

QColor AnsiPalette::indexed(int index) const
{
    if (index < 0 || index > 255)
        return {};
    if (index < 16)
        return QColor::fromRgb(m_base16[size_t(index)]);
    if (index < 232) {
        static constexpr int kLevels[6] = {0, 95, 135, 175, 215, 255};
        const int i = index - 16;
        return QColor(kLevels[i / 36], kLevels[(i / 6) % 6], kLevels[i % 6]);
    }
    const int grey = 8 + 10 * (index - 232);
    return QColor(grey, grey, grey);
}

QColor AnsiPalette::resolve(const AnsiColor &color) const
{
    switch (color.kind) {
    case AnsiColor::Kind::Indexed:
        return indexed(color.index);
    case AnsiColor::Kind::Rgb:
        return QColor::fromRgb(color.rgb);
    case AnsiColor::Kind::Default:
        break;
    }
    return {};
}

QTextCharFormat AnsiPalette::format(const AnsiStyle &style, const QTextCharFormat &base) const
{
    QTextCharFormat f = base;
    if (style.isDefault())
        return f;
    const QColor baseFg = base.hasProperty(QTextFormat::ForegroundBrush) ? base.foreground().color() : m_text;
    const QColor baseBg = base.hasProperty(QTextFormat::BackgroundBrush) ? base.background().color() : m_base;
    QColor fg = resolve(style.foreground);
    QColor bg = resolve(style.background);
    if (style.inverse) {
        const QColor newFg = bg.isValid() ? bg : baseBg;
        bg = fg.isValid() ? fg : baseFg;
        fg = newFg;
    }
    if (style.dim)
        fg = mix(fg.isValid() ? fg : baseFg, bg.isValid() ? bg : baseBg, 0.45);
    if (fg.isValid())
        f.setForeground(fg);
    if (bg.isValid())
        f.setBackground(bg);
    if (style.bold)
        f.setFontWeight(QFont::Bold);
    if (style.italic)
        f.setFontItalic(true);
    if (style.underline)
        f.setFontUnderline(true);
    if (style.strike)
        f.setFontStrikeOut(true);
    return f;
}

QList<StyledSegment> AnsiPalette::segments(const AnsiLine &line, const QTextCharFormat &base) const
{
    QList<StyledSegment> out;
    if (line.spans.isEmpty()) {
        out.append({line.text, base});
        return out;
    }
    out.reserve(line.spans.size());
    for (const AnsiSpan &span : line.spans)
        out.append({line.text.mid(span.start, span.length), format(span.style, base)});
    return out;
}

QString stripAnsi(QStringView raw)
{
    AnsiParser parser;
    return parser.parseLine(raw.toString()).text;
}

} // namespace taskdeck::ui
