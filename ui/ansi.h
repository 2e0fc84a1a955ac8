// SPDX-License-Identifier: MIT
#pragma once

#include <QColor>
#include <QList>
#include <QString>
#include <QStringView>
#include <QTextCharFormat>

#include <array>

class QPalette;

namespace taskdeck::ui {

/*! A colour as a terminal program asked for it: the default, an index of the 256-colour
 *  palette (0..15 are the themed base colours), or a 24-bit value. */
struct AnsiColor
{
    enum class Kind : quint8 { Default, Indexed, Rgb };

    Kind kind = Kind::Default;
    quint8 index = 0; //!< Indexed only
    QRgb rgb = 0;     //!< Rgb only

    static AnsiColor indexed(int index);
    static AnsiColor fromRgb(int r, int g, int b);
    bool isDefault() const { return kind == Kind::Default; }
    friend bool operator==(const AnsiColor &, const AnsiColor &) = default;
};

/*! The graphic rendition in force at a character: what SGR sequences set. */
struct AnsiStyle
{
    AnsiColor foreground;
    AnsiColor background;
    bool bold = false;
    bool dim = false;
    bool italic = false;
    bool underline = false;
    bool inverse = false;
    bool strike = false;

    bool isDefault() const { return *this == AnsiStyle(); }
    friend bool operator==(const AnsiStyle &, const AnsiStyle &) = default;
};

/*! A run of characters of one style: text.mid(start, length) of its AnsiLine. */
struct AnsiSpan
{
    int start = 0;
    int length = 0;
    AnsiStyle style;
};

/*!
 * One log line as a terminal would show it: the visible text (no escape or control
 * characters) and the styled runs covering it, in order. No spans means the whole text is
 * in the default style (the common case of a line without escapes).
 */
struct AnsiLine
{
    QString text;
    QList<AnsiSpan> spans;
};

/*!
 * Reads ANSI escape sequences out of log lines, line by line, carrying the rendition from
 * one line to the next as a terminal does (a colour set on one line and reset on a later one
 * colours every line between).
 *
 * SGR sequences (ESC [ ... m) set colours (16, 256 and 24-bit, foreground and background)
 * and bold, dim, italic, underline, inverse and strike-through, with their partial resets
 * (22, 23, 24, 27, 29, 39, 49) and the full reset (0 or empty). Erase in line (ESC [ K, 1K,
 * 2K) acts on the line being built; every other CSI, OSC or escape sequence and every
 * control character other than tab is dropped. A carriage return that is not the line's last
 * character moves back to column 0, so later text overwrites the earlier characters at the
 * same columns; a backspace moves back one column.
 *
 * \code
 * AnsiParser parser;
 * const AnsiLine line = parser.parseLine(u"\x1b[1;31merror:\x1b[m bad input"_s);
 * // line.text == "error: bad input"; line.spans[0] is bold red over "error:"
 * \endcode
 */
class AnsiParser final
{
public:
    /*! Parses one line (without its line break) and moves the carried state past it. A
     *  line with no escape or control character shares \a raw's text. */
    AnsiLine parseLine(const QString &raw);

    /*! The rendition in force after the lines parsed so far. */
    AnsiStyle state() const { return m_state; }
    void setState(const AnsiStyle &state) { m_state = state; }
    /*! Back to the default rendition, as at the start of a log. */
    void reset() { m_state = AnsiStyle(); }

private:
    void applySgr(QStringView params);

    AnsiStyle m_state;
};

/*! A run of text with its character format, ready for a QTextCursor. */
struct StyledSegment
{
    QString text;
    QTextCharFormat format;
};

/*!
 * The colours a log pane paints ANSI styles with. The 16 base colours come in two sets, one
 * that reads on light backgrounds and one for dark ones; 16..231 are the xterm colour cube
 * and 232..255 its grey ramp; 24-bit colours are used as they are.
 */
class AnsiPalette final
{
public:
    /*! For a light background: \a text and \a base are the default text and background. */
    static AnsiPalette light(const QColor &text = QColor(0x1f, 0x23, 0x28),
                             const QColor &base = QColor(Qt::white));
    static AnsiPalette dark(const QColor &text = QColor(0xdf, 0xe1, 0xe5),
                            const QColor &base = QColor(0x1e, 0x1f, 0x22));
    /*! The set that reads on \a palette's Base colour, with its Text and Base as defaults. */
    static AnsiPalette forPalette(const QPalette &palette);

    bool isDark() const { return m_dark; }
    QColor defaultForeground() const { return m_text; }
    QColor defaultBackground() const { return m_base; }

    /*! The colour of palette index \a index (0..255); invalid outside. */
    QColor indexed(int index) const;
    /*! \a color as painted; invalid for the default colour. */
    QColor resolve(const AnsiColor &color) const;

    /*!
     * The character format of \a style on top of \a base: colours are set only where the
     * style names one (or inverse/dim needs one), so \a base's colours show through as the
     * defaults.
     */
    QTextCharFormat format(const AnsiStyle &style, const QTextCharFormat &base = QTextCharFormat()) const;

    /*! \a line cut into segments with their formats over \a base. */
    QList<StyledSegment> segments(const AnsiLine &line, const QTextCharFormat &base = QTextCharFormat()) const;

private:
    AnsiPalette(bool dark, const std::array<QRgb, 16> &base16, const QColor &text, const QColor &base);

    bool m_dark = false;
    std::array<QRgb, 16> m_base16{};
    QColor m_text;
    QColor m_base;
};

/*! \a raw with every escape sequence and control character removed (a line's plain text). */
QString stripAnsi(QStringView raw);

} // namespace taskdeck::ui
