// SPDX-License-Identifier: MIT
#include "tasksfile.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QJsonArray>
#include <QLocale>
#include <QRegularExpression>
#include <QScopeGuard>
#include <QSet>
#include <QStandardPaths>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <sys/stat.h>

#include "command.h"
#include "engineconfig.h"
#include "field.h"
#include "runcontext.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

constexpr auto DefaultFileName = "taskdeck.yml"_L1;
constexpr auto TaskFileVariable = "TASK_FILE"_L1;
constexpr auto ArgumentPrefix = "TASK_ARG_"_L1;
constexpr auto DurationExamples = "a duration such as 90s, 5m, 1h"_L1;

// A tasks file is hand-written configuration; anything this large is a wrong path, and
// reading it whole would only waste memory.
constexpr qint64 MaxFileBytes = 16 * 1024 * 1024;

// Bounds the walk that records where nodes start: aliases can make a small file describe
// an exponentially large tree, and positions past this many nodes are not worth it.
constexpr int MaxIndexedNodes = 200000;
constexpr int MaxIndexedDepth = 64;

// Given values longer than this are cut in messages so one bad paste cannot flood a report.
constexpr qsizetype MaxQuoted = 60;

const QStringList &topLevelKeys()
{
    static const QStringList keys = {u"version"_s, u"tasks"_s};
    return keys;
}

const QStringList &taskKeys()
{
    static const QStringList keys = {
        u"title"_s,   u"description"_s, u"category"_s, u"icon"_s,    u"tags"_s,
        u"danger"_s,  u"expensive"_s,   u"timeout"_s,  u"retries"_s, u"retry_delay"_s,
        u"max_concurrent"_s, u"start_rate"_s, u"fields"_s, u"command"_s, u"shell"_s, u"cwd"_s, u"env"_s,
    };
    return keys;
}

const QStringList &fieldKeys()
{
    static const QStringList keys = {
        u"key"_s,     u"type"_s, u"title"_s, u"description"_s, u"default"_s, u"required"_s,
        u"choices"_s, u"min"_s,  u"max"_s,   u"pattern"_s,     u"placeholder"_s,
    };
    return keys;
}

// Blanks inside the braces are tolerated as most template languages do; anything else that
// is not a name leaves the braces as literal text.
const QRegularExpression &templatePattern()
{
    static const QRegularExpression re(u"\\{\\{[ \\t]*([A-Za-z_][A-Za-z0-9_-]*)[ \\t]*\\}\\}"_s);
    return re;
}

// Field keys are what templates can name, so they follow the template name syntax.
bool isValidFieldKey(const QString &key)
{
    // Anchored for real: '$' alone would also accept a trailing newline.
    static const QRegularExpression re(QRegularExpression::anchoredPattern(u"[A-Za-z_][A-Za-z0-9_-]*"_s));
    return re.match(key).hasMatch();
}

bool isValidVariableName(const QString &name)
{
    static const QRegularExpression re(QRegularExpression::anchoredPattern(u"[A-Za-z_][A-Za-z0-9_]*"_s));
    return re.match(name).hasMatch();
}

QString quoted(const QString &s)
{
    QString out = u"\""_s;
    for (qsizetype i = 0; i < s.size(); ++i) {
        if (i == MaxQuoted) {
            out += QChar(0x2026);
            break;
        }
        const QChar c = s.at(i);
        if (c == u'"' || c == u'\\')
            out += u'\\' + QString(c);
        else if (c == u'\n')
            out += u"\\n"_s;
        else if (c == u'\t')
            out += u"\\t"_s;
        else if (c.unicode() < 0x20)
            out += u"\\u"_s + QString::number(c.unicode(), 16).rightJustified(4, u'0');
        else
            out += c;
    }
    return out + u'"';
}

QString fromYaml(const std::string &s)
{
    return QString::fromUtf8(s.data(), qsizetype(s.size()));
}

QString describe(const YAML::Node &node)
{
    switch (node.Type()) {
    case YAML::NodeType::Sequence:
        return u"a list"_s;
    case YAML::NodeType::Map:
        return u"a mapping"_s;
    case YAML::NodeType::Scalar:
        return quoted(fromYaml(node.Scalar()));
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
        break;
    }
    return u"nothing"_s;
}

// The text an argument contributes to a command: the same spelling a person would type.
QString argumentText(const QJsonValue &value)
{
    switch (value.type()) {
    case QJsonValue::String:
        return value.toString();
    case QJsonValue::Bool:
        return value.toBool() ? u"true"_s : u"false"_s;
    case QJsonValue::Double:
        // Whole numbers are read exactly (a double rounds them beyond 2^53); exponents
        // would surprise a command.
        if (const std::optional<qint64> i = exactInteger(value))
            return QString::number(*i);
        return QString::number(value.toDouble(), 'f', QLocale::FloatingPointShortest);
    case QJsonValue::Array: {
        QStringList parts;
        const QJsonArray array = value.toArray();
        for (const QJsonValue &item : array)
            parts << argumentText(item);
        return parts.join(u',');
    }
    case QJsonValue::Object:
    case QJsonValue::Null:
    case QJsonValue::Undefined:
        break;
    }
    return QString();
}

/*! A string with {{field}} references, split once when the file is read. */
struct TemplatePart
{
    QString text;      // literal text, or the field key when isField
    bool isField = false;
};
using Template = QList<TemplatePart>;

Template splitTemplate(const QString &text)
{
    Template parts;
    qsizetype last = 0;
    auto it = templatePattern().globalMatch(text);
    while (it.hasNext()) {
        const QRegularExpressionMatch m = it.next();
        if (m.capturedStart() > last)
            parts.append({text.mid(last, m.capturedStart() - last), false});
        parts.append({m.captured(1), true});
        last = m.capturedEnd();
    }
    if (last < text.size())
        parts.append({text.mid(last), false});
    return parts;
}

QString render(const Template &parts, const QJsonObject &args)
{
    QString out;
    for (const TemplatePart &part : parts)
        out += part.isField ? argumentText(args.value(part.text)) : part.text;
    return out;
}

/*! How one task of a file runs: fixed when the file is read, shared by all its runs. */
struct CommandSpec
{
    QList<Template> argv;   // command tasks
    QString script;         // shell tasks
    bool isShell = false;
    std::optional<Template> cwd;
    QList<QPair<QString, Template>> env;
    QStringList fieldKeys;
    QString baseDirectory;
    bool retryFailures = false;
};

QJsonValue runSpec(const CommandSpec &spec, RunContext &ctx)
{
    const QJsonObject &args = ctx.args();
    Command cmd;
    if (spec.isShell) {
        // The task key as $0 makes the shell's own messages name the task, not "sh".
        cmd.argv = {u"/bin/sh"_s, u"-c"_s, spec.script, ctx.taskKey()};
    } else {
        for (const Template &element : spec.argv)
            cmd.argv << render(element, args);
    }
    // Every field is set, empty when missing, so a variable inherited from the server's own
    // environment can never pose as an argument.
    for (const QString &key : spec.fieldKeys)
        cmd.env.insert(taskArgumentVariable(key), argumentText(args.value(key)));
    for (const auto &[name, value] : spec.env)
        cmd.env.insert(name, render(value, args));

    const QString cwd = spec.cwd ? render(*spec.cwd, args) : QString();
    if (cwd.isEmpty())
        cmd.workingDirectory = spec.baseDirectory;
    else if (spec.baseDirectory.isEmpty() || QDir::isAbsolutePath(cwd))
        cmd.workingDirectory = cwd;
    else
        cmd.workingDirectory = QDir(spec.baseDirectory).filePath(cwd);

    try {
        return ctx.runChecked(cmd);
    } catch (const TaskError &e) {
        // A task that asks for retries declares its non-zero exits worth another try; a
        // command that cannot start or was stopped stays final.
        if (spec.retryFailures && e.kind() == u"ExitCode" && !e.isTransient())
            throw TaskError(e.message(), e.kind(), true, e.detail());
        throw;
    }
}

/*! Byte offsets in the file, turned into the 1-based line and column a person sees. */
class SourceMap final
{
public:
    explicit SourceMap(const QByteArray &text)
        : m_text(text)
    {
        m_lineStarts.append(0);
        for (qsizetype i = 0; i < text.size(); ++i) {
            if (text.at(i) == '\n')
                m_lineStarts.append(i + 1);
        }
    }

    // yaml-cpp counts lines from 0 and columns in bytes from 0.
    qsizetype offsetOf(const YAML::Mark &mark) const
    {
        if (mark.line < 0 || mark.column < 0)
            return -1;
        if (mark.line >= m_lineStarts.size())
            return m_text.size();
        return std::min<qsizetype>(m_lineStarts.at(mark.line) + mark.column, m_text.size());
    }

    TasksFilePosition positionOf(qsizetype offset) const
    {
        offset = std::clamp<qsizetype>(offset, 0, m_text.size());
        const auto next = std::upper_bound(m_lineStarts.cbegin(), m_lineStarts.cend(), offset);
        const qsizetype line = std::distance(m_lineStarts.cbegin(), next) - 1;
        const qsizetype start = m_lineStarts.at(line);
        // Columns count characters, as editors do: skip UTF-8 continuation bytes.
        qsizetype column = 1;
        for (qsizetype i = start; i < offset; ++i) {
            if ((static_cast<unsigned char>(m_text.at(i)) & 0xC0) != 0x80)
                ++column;
        }
        return {int(line + 1), int(column)};
    }

    void addNodeStart(qsizetype offset) { m_nodeStarts.push_back(offset); }
    void finishIndex()
    {
        std::sort(m_nodeStarts.begin(), m_nodeStarts.end());
        m_nodeStarts.erase(std::unique(m_nodeStarts.begin(), m_nodeStarts.end()), m_nodeStarts.end());
    }

    /*!
     * Offset of the \a occurrence-th (0-based) \a needle in the source text of the node that
     * starts at \a start, which ends where the next node starts. -1 when not found (the
     * value was spelled with escapes, for example).
     */
    qsizetype find(qsizetype start, const QByteArray &needle, int occurrence) const
    {
        if (start < 0)
            return -1;
        const auto next = std::upper_bound(m_nodeStarts.cbegin(), m_nodeStarts.cend(), start);
        const qsizetype end = next == m_nodeStarts.cend() ? m_text.size() : *next;
        qsizetype at = start;
        for (int i = 0; i <= occurrence; ++i) {
            at = m_text.indexOf(needle, i == 0 ? at : at + 1);
            if (at < 0 || at + needle.size() > end)
                return -1;
        }
        return at;
    }

private:
    QByteArray m_text;
    QList<qsizetype> m_lineStarts;
    std::vector<qsizetype> m_nodeStarts;
};

/*! What {{name}} may refer to in one task. */
struct TemplateNames
{
    QString taskKey;
    QStringList fields;
    QStringList secrets;
    // Off when a field has a mistake: its name would show up again as "names no field".
    bool check = true;
};

/*! One key of a mapping and its value. */
struct Entry
{
    YAML::Node key;
    YAML::Node value;
};
using Entries = std::map<QString, Entry>;

/*! Reads one file's text into tasks, collecting every mistake. */
class Parser final
{
public:
    Parser(const QByteArray &yaml, const QString &fileName, const QString &baseDirectory)
        : m_text(yaml)
        , m_source(yaml)
        , m_baseDirectory(baseDirectory)
    {
        m_result.file = fileName;
    }

    TasksFileResult parse();

private:
    void errorAt(qsizetype offset, const QString &message);
    void error(const YAML::Node &node, const QString &message, const YAML::Node &fallback = {});
    // False, with an error naming \a name, when \a value holds a NUL character.
    bool refuseNul(const YAML::Node &node, const QString &name, const QString &value);
    qsizetype offsetOf(const YAML::Node &node, const YAML::Node &fallback = {}) const;
    TasksFilePosition positionOf(const YAML::Node &node) const
    {
        return m_source.positionOf(std::max<qsizetype>(0, offsetOf(node)));
    }
    void indexNodes(const YAML::Node &node, int depth, int *budget);
    QString withContext(const QString &message) const
    {
        return m_context.isEmpty() ? message : message + u" ("_s + m_context + u')';
    }

    Entries entries(const YAML::Node &map, const QStringList &accepted, const QString &where);

    void invalid(const Entry &e, const QString &name, const QString &expected);
    std::optional<QString> text(const Entry &e, const QString &name);
    std::optional<bool> boolean(const Entry &e, const QString &name);
    std::optional<int> count(const Entry &e, const QString &name);
    std::optional<double> number(const Entry &e, const QString &name);
    std::optional<double> rate(const Entry &e, const QString &name);
    std::optional<std::chrono::milliseconds> duration(const Entry &e, const QString &name);
    std::optional<QStringList> textList(const Entry &e, const QString &name);

    void parseTasks(const Entry &tasks);
    std::optional<Task> parseTask(const QString &key, const YAML::Node &keyNode,
                                  const YAML::Node &value);
    std::optional<Fields> parseFields(const Entry &e, const QString &taskKey);
    std::optional<Field> parseField(const YAML::Node &item, const QString &taskKey);
    std::optional<Field::Choices> parseChoices(const Entry &e);
    bool parseDefault(const Entry &e, Field &field);
    void readSettings(const Entries &e, Task &task);
    void readProgram(const Entries &e, const YAML::Node &keyNode, const TemplateNames &names,
                     CommandSpec &spec);
    void readEnvironment(const Entries &e, const TemplateNames &names, CommandSpec &spec);
    bool checkTemplates(const YAML::Node &node, const QStringList &values,
                        const TemplateNames &names, bool commandLine);
    bool checkScriptHasNoTemplates(const YAML::Node &node, const QString &script);
    std::optional<QStringList> parseCommand(const Entry &e);
    std::optional<QList<QPair<QString, QString>>> parseEnv(const Entry &e,
                                                           QList<YAML::Node> *valueNodes);

    QByteArray m_text;
    SourceMap m_source;
    QString m_baseDirectory;
    QString m_context; // what the current errors are about: "task "x"", "task "x", field "y""
    TasksFileResult m_result;
};

void Parser::errorAt(qsizetype offset, const QString &message)
{
    TasksFileError e;
    e.file = m_result.file;
    const TasksFilePosition pos = m_source.positionOf(std::max<qsizetype>(0, offset));
    e.line = pos.line;
    e.column = pos.column;
    e.message = message;
    m_result.errors.append(e);
}

void Parser::error(const YAML::Node &node, const QString &message, const YAML::Node &fallback)
{
    errorAt(offsetOf(node, fallback), withContext(message));
}

qsizetype Parser::offsetOf(const YAML::Node &node, const YAML::Node &fallback) const
{
    // An empty value ("title:") is marked at whatever token follows it, often on another
    // line: its key is the place a person would look at.
    const bool usable = node.IsDefined() && !node.IsNull();
    qsizetype offset = usable ? m_source.offsetOf(node.Mark()) : -1;
    if (offset < 0 && fallback.IsDefined())
        offset = m_source.offsetOf(fallback.Mark());
    if (offset < 0 && node.IsDefined())
        offset = m_source.offsetOf(node.Mark());
    return offset;
}

void Parser::indexNodes(const YAML::Node &node, int depth, int *budget)
{
    if (*budget <= 0 || depth > MaxIndexedDepth || !node.IsDefined())
        return;
    --*budget;
    const qsizetype offset = m_source.offsetOf(node.Mark());
    if (offset >= 0)
        m_source.addNodeStart(offset);
    if (node.IsMap()) {
        for (auto it = node.begin(); it != node.end(); ++it) {
            indexNodes(it->first, depth + 1, budget);
            indexNodes(it->second, depth + 1, budget);
        }
    } else if (node.IsSequence()) {
        for (auto it = node.begin(); it != node.end(); ++it)
            indexNodes(*it, depth + 1, budget);
    }
}

Entries Parser::entries(const YAML::Node &map, const QStringList &accepted, const QString &where)
{
    Entries out;
    std::map<QString, YAML::Node> seen; // includes keys left empty, which out leaves out
    for (auto it = map.begin(); it != map.end(); ++it) {
        const YAML::Node key = it->first;
        const YAML::Node value = it->second;
        if (!key.IsScalar()) {
            error(key, u"keys %1 must be plain names, not %2"_s.arg(where, describe(key)));
            continue;
        }
        const QString name = fromYaml(key.Scalar());
        if (!accepted.contains(name)) {
            // The message already says where it is, so no context is appended.
            errorAt(offsetOf(key), u"unknown key %1 %2; accepted: %3"_s.arg(quoted(name), where,
                                                                            accepted.join(u", ")));
            continue;
        }
        if (const auto found = seen.find(name); found != seen.end()) {
            errorAt(offsetOf(key), u"duplicate key %1 %2 (first given at line %3)"_s.arg(
                                       quoted(name), where,
                                       QString::number(positionOf(found->second).line)));
            continue;
        }
        seen.emplace(name, key);
        // "key:" with nothing after it reads as null: treat it as not written at all.
        if (value.IsNull())
            continue;
        out.emplace(name, Entry{key, value});
    }
    return out;
}

void Parser::invalid(const Entry &e, const QString &name, const QString &expected)
{
    if (e.value.IsScalar())
        error(e.value, u"%1 %2 is invalid: expected %3"_s.arg(name, describe(e.value), expected), e.key);
    else
        error(e.value, u"%1 must be %2, not %3"_s.arg(name, expected, describe(e.value)), e.key);
}

std::optional<QString> Parser::text(const Entry &e, const QString &name)
{
    if (!e.value.IsScalar()) {
        error(e.value, u"%1 must be text, not %2"_s.arg(name, describe(e.value)), e.key);
        return std::nullopt;
    }
    const QString value = fromYaml(e.value.Scalar());
    if (!refuseNul(e.value, name, value))
        return std::nullopt;
    return value;
}

bool Parser::refuseNul(const YAML::Node &node, const QString &name, const QString &value)
{
    if (!value.contains(QChar::Null))
        return true;
    // A program's arguments, environment and paths end at the first NUL: the rest would be
    // dropped without a word, or a different program run.
    error(node, u"%1 contains a NUL character (\\0), which cannot be passed on"_s.arg(name));
    return false;
}

std::optional<bool> Parser::boolean(const Entry &e, const QString &name)
{
    if (e.value.IsScalar()) {
        // The YAML 1.1 spellings people still write in configuration files.
        const QString s = fromYaml(e.value.Scalar()).toLower();
        if (s == u"true" || s == u"yes" || s == u"on")
            return true;
        if (s == u"false" || s == u"no" || s == u"off")
            return false;
    }
    invalid(e, name, u"true or false"_s);
    return std::nullopt;
}

std::optional<int> Parser::count(const Entry &e, const QString &name)
{
    if (e.value.IsScalar()) {
        bool ok = false;
        const int value = fromYaml(e.value.Scalar()).trimmed().toInt(&ok, 10);
        if (ok && value >= 0)
            return value;
    }
    invalid(e, name, u"a whole number of 0 or more"_s);
    return std::nullopt;
}

std::optional<double> Parser::number(const Entry &e, const QString &name)
{
    if (e.value.IsScalar()) {
        bool ok = false;
        // The file means the same on every machine: never the user's locale.
        const double value = QLocale::c().toDouble(fromYaml(e.value.Scalar()).trimmed(), &ok);
        if (ok && std::isfinite(value))
            return value;
    }
    invalid(e, name, u"a number"_s);
    return std::nullopt;
}

// N/s or N/m, as TASK_RATE_LIMIT and worker --start-rate: starts per second.
std::optional<double> Parser::rate(const Entry &e, const QString &name)
{
    if (e.value.IsScalar()) {
        static const QRegularExpression pattern(u"^(\\d{1,9}(?:\\.\\d{1,9})?)/([sm])$"_s);
        const QRegularExpressionMatch m = pattern.match(fromYaml(e.value.Scalar()).trimmed());
        const double perSecond = m.hasMatch()
            ? QLocale::c().toDouble(m.captured(1)) / (m.captured(2) == u"m" ? 60.0 : 1.0) : 0.0;
        if (perSecond > 0)
            return perSecond;
    }
    invalid(e, name, u"starts per second or per minute as N/s or N/m (5/s, 30/m, 0.5/s)"_s);
    return std::nullopt;
}

std::optional<std::chrono::milliseconds> Parser::duration(const Entry &e, const QString &name)
{
    if (e.value.IsScalar()) {
        const QString text = fromYaml(e.value.Scalar()).trimmed();
        if (const auto d = parseDuration(text))
            return d;
        if (const QString tooLong = durationTooLong(text); !tooLong.isEmpty()) {
            invalid(e, name, tooLong);
            return std::nullopt;
        }
    }
    invalid(e, name, DurationExamples);
    return std::nullopt;
}

std::optional<QStringList> Parser::textList(const Entry &e, const QString &name)
{
    if (!e.value.IsSequence()) {
        error(e.value, u"%1 must be a list of text, not %2"_s.arg(name, describe(e.value)), e.key);
        return std::nullopt;
    }
    QStringList list;
    bool ok = true;
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
        const YAML::Node item = *it;
        if (!item.IsScalar()) {
            error(item, u"items of %1 must be text, not %2"_s.arg(name, describe(item)), e.value);
            ok = false;
            continue;
        }
        list << fromYaml(item.Scalar());
    }
    return ok ? std::optional<QStringList>(list) : std::nullopt;
}

namespace {

// What a scan of the raw text finds that yaml-cpp reports badly or not at all (see
// scanYaml()). Offsets are bytes into the text; -1 when nothing was found.
struct YamlScan
{
    qsizetype tooDeep = -1;        // where flow nesting passes kMaxFlowDepth
    qsizetype tabIndent = -1;      // the first tab in a line's indentation
    qsizetype unclosedQuote = -1;  // a quoted value that never closes
    // Quoted values that run over more than one line: (opening quote, closing quote).
    std::vector<std::pair<qsizetype, qsizetype>> multiLineQuotes;
};

// Deeper flow nesting ([[[...]]]) than any tasks file needs; yaml-cpp's own limit says only
// "bad file".
constexpr int kMaxFlowDepth = 100;

/*
 * A light pass over the text: comments, quoted values and the contents of block scalars
 * (| and >) are skipped as YAML reads them; flow brackets are counted. It does not parse: it
 * only finds what turns yaml-cpp's message into one that names the problem.
 */
YamlScan scanYaml(const QByteArray &text)
{
    YamlScan scan;
    const qsizetype n = text.size();
    int depth = 0;
    qsizetype i = 0;
    int blockIndent = -1; // inside a block scalar: the indentation of the line that opened it
    while (i < n) {
        // At the start of a line.
        const qsizetype lineStart = i;
        qsizetype j = i;
        while (j < n && (text[j] == ' ' || text[j] == '\t'))
            ++j;
        const int indent = int(j - lineStart);
        const bool blank = j >= n || text[j] == '\n' || text[j] == '\r';
        if (blockIndent >= 0) {
            // Content lines are those indented more than the line that opened the block.
            qsizetype spaces = lineStart;
            while (spaces < n && text[spaces] == ' ')
                ++spaces;
            if (blank || int(spaces - lineStart) > blockIndent) {
                const qsizetype end = text.indexOf('\n', i);
                i = end < 0 ? n : end + 1;
                continue;
            }
            blockIndent = -1;
        }
        if (!blank && depth == 0 && scan.tabIndent < 0) {
            const qsizetype tab = text.indexOf('\t', lineStart);
            if (tab >= 0 && tab < j)
                scan.tabIndent = tab;
        }
        // The rest of the line (and of any quoted value that goes on past it).
        char previous = ' ';  // the last character that was not a blank
        bool valueStart = true; // where a quoted value may start
        i = j;
        while (i < n && text[i] != '\n') {
            const char c = text[i];
            if (c == '#' && (i == lineStart || text[i - 1] == ' ' || text[i - 1] == '\t')) {
                while (i < n && text[i] != '\n')
                    ++i;
                break;
            }
            if ((c == '"' || c == '\'') && valueStart) {
                const qsizetype open = i;
                ++i;
                bool closed = false;
                while (i < n) {
                    if (c == '"' && text[i] == '\\') {
                        i += 2;
                        continue;
                    }
                    if (text[i] == c) {
                        if (c == '\'' && i + 1 < n && text[i + 1] == '\'') {
                            i += 2;
                            continue;
                        }
                        closed = true;
                        break;
                    }
                    ++i;
                }
                if (!closed) {
                    scan.unclosedQuote = open;
                    return scan;
                }
                // Only one that swallowed what looks like the next key ("  command: ...").
                static const QRegularExpression keyLine(u"\\n[ \\t]*[A-Za-z0-9_-]+:( |$)"_s,
                                                        QRegularExpression::MultilineOption);
                const qsizetype firstBreak = text.indexOf('\n', open);
                if (firstBreak >= 0 && firstBreak < i
                    && keyLine.match(QString::fromUtf8(text.mid(open, i - open))).hasMatch())
                    scan.multiLineQuotes.emplace_back(open, i);
                ++i;
                previous = c;
                valueStart = false;
                continue;
            }
            if (c == '[' || c == '{') {
                if (++depth > kMaxFlowDepth && scan.tooDeep < 0)
                    scan.tooDeep = i;
            } else if ((c == ']' || c == '}') && depth > 0) {
                --depth;
            }
            if (c != ' ' && c != '\t' && c != '\r') {
                // A quoted value starts a value: after "key: ", "- ", "[", "{", "," or "? ".
                const bool next = i + 1 >= n || text[i + 1] == ' ' || text[i + 1] == '\n';
                valueStart = c == '[' || c == '{' || c == ',' || ((c == ':' || c == '-' || c == '?') && next);
                previous = c;
            }
            ++i;
        }
        // "key: |", "- >-", "key: |2": the lines after it are the block's content.
        if (depth == 0 && (previous == '|' || previous == '>' || previous == '-' || previous == '+'
                           || (previous >= '1' && previous <= '9'))) {
            const QByteArray line = text.mid(j, i - j).trimmed();
            static const QRegularExpression blockStart(u"(^|[:-] )[|>][+-]?[1-9]?[+-]?$"_s);
            if (blockStart.match(QString::fromUtf8(line)).hasMatch())
                blockIndent = indent;
        }
        if (i < n)
            ++i; // the newline
    }
    return scan;
}

} // namespace

// Where each YAML document's root node starts; the rest of the events are not needed.
class DocumentStarts final : public YAML::EventHandler
{
public:
    std::vector<YAML::Mark> marks;

    void OnDocumentStart(const YAML::Mark &) override { m_wantRoot = true; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark &mark, YAML::anchor_t) override { node(mark); }
    void OnAlias(const YAML::Mark &mark, YAML::anchor_t) override { node(mark); }
    void OnScalar(const YAML::Mark &mark, const std::string &, YAML::anchor_t, const std::string &) override
    {
        node(mark);
    }
    void OnSequenceStart(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                         YAML::EmitterStyle::value) override
    {
        node(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                    YAML::EmitterStyle::value) override
    {
        node(mark);
    }
    void OnMapEnd() override {}

private:
    void node(const YAML::Mark &mark)
    {
        if (m_wantRoot)
            marks.push_back(mark);
        m_wantRoot = false;
    }

    bool m_wantRoot = false;
};

TasksFileResult Parser::parse()
{
    // What yaml-cpp would report badly (or, for a quote that never closes, not at all).
    const YamlScan scan = scanYaml(m_text);
    if (scan.tooDeep >= 0) {
        errorAt(scan.tooDeep, u"YAML nested more than %1 levels deep here; a tasks file needs only a few"_s
                                  .arg(kMaxFlowDepth));
        return m_result;
    }
    if (scan.unclosedQuote >= 0) {
        errorAt(scan.unclosedQuote, u"YAML syntax error: this quoted value is never closed (its closing %1 "
                                    "is missing)"_s.arg(m_text[scan.unclosedQuote] == '"' ? u"\""_s : u"'"_s));
        return m_result;
    }
    // YAML::LoadAll of yaml-cpp 0.7 never returns on some malformed text (a lone ',' is
    // enough): it keeps adding empty documents, taking memory. So the documents are counted
    // with the parser's events, at most two, and only the first is loaded.
    const std::string text(m_text.constData(), size_t(m_text.size()));
    YAML::Node root;
    std::optional<YAML::Mark> secondDocument;
    try {
        std::istringstream stream(text);
        YAML::Parser parser(stream);
        DocumentStarts starts;
        for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
        }
        if (starts.marks.empty()) {
            errorAt(0, u"the file is empty; expected a mapping with a \"tasks\" key"_s);
            return m_result;
        }
        if (starts.marks.size() > 1)
            secondDocument = starts.marks.at(1);
        root = YAML::Load(text);
    } catch (const YAML::Exception &e) {
        const qsizetype at = m_source.offsetOf(e.mark);
        // A tab in an indentation, before the place yaml-cpp gave up, is the likely cause:
        // its words for it are "end of map not found", and not always on the tab's line.
        const qsizetype lineEnd = m_text.indexOf('\n', std::max<qsizetype>(0, at));
        if (scan.tabIndent >= 0 && (lineEnd < 0 || scan.tabIndent <= lineEnd)) {
            errorAt(scan.tabIndent, u"YAML syntax error: a tab in the indentation; YAML indents with spaces only"_s);
            return m_result;
        }
        // So is a quoted value that ran on over the lines after it, its closing quote
        // missing where it was meant to be.
        for (const auto &[open, close] : scan.multiLineQuotes) {
            if (open < at) {
                const TasksFilePosition end = m_source.positionOf(close);
                errorAt(open, u"YAML syntax error: %1 (the quoted value that starts here runs on to line %2; "
                              "is a closing quote missing?)"_s.arg(fromYaml(e.msg)).arg(end.line));
                return m_result;
            }
        }
        errorAt(at, u"YAML syntax error: "_s + fromYaml(e.msg));
        return m_result;
    }

    int budget = MaxIndexedNodes;
    indexNodes(root, 0, &budget);
    m_source.finishIndex();

    if (secondDocument)
        errorAt(m_source.offsetOf(*secondDocument), u"a second YAML document starts here; a tasks file holds one"_s);

    if (!root.IsMap()) {
        error(root, u"the file must be a mapping with a \"tasks\" key, not %1"_s.arg(describe(root)));
        return m_result;
    }
    const Entries top = entries(root, topLevelKeys(), u"at the top level"_s);
    if (const auto version = top.find(u"version"_s); version != top.end()) {
        const YAML::Node &v = version->second.value;
        if (!v.IsScalar() || fromYaml(v.Scalar()).trimmed() != u"1")
            error(v, u"version %1 is not supported; accepted: 1"_s.arg(describe(v)));
    }
    if (const auto tasks = top.find(u"tasks"_s); tasks != top.end()) {
        parseTasks(tasks->second);
    } else if (!std::any_of(root.begin(), root.end(), [](const auto &kv) {
                   return kv.first.IsScalar() && kv.first.Scalar() == "tasks";
               })) {
        error(root, u"no \"tasks\" key; expected tasks: followed by a mapping of task key to task"_s);
    }
    return m_result;
}

void Parser::parseTasks(const Entry &tasks)
{
    if (!tasks.value.IsMap()) {
        error(tasks.value, u"tasks must be a mapping of task key to task, not %1"_s.arg(describe(tasks.value)),
              tasks.key);
        return;
    }
    QHash<QString, int> firstLine;
    for (auto it = tasks.value.begin(); it != tasks.value.end(); ++it) {
        const YAML::Node keyNode = it->first;
        const YAML::Node value = it->second;
        if (!keyNode.IsScalar()) {
            error(keyNode, u"task keys must be plain names, not %1"_s.arg(describe(keyNode)));
            continue;
        }
        const QString key = fromYaml(keyNode.Scalar());
        QString why;
        const bool validKey = isValidTaskKey(key, &why);
        if (!validKey)
            error(keyNode, why);
        const TasksFilePosition pos = positionOf(keyNode);
        const bool duplicate = firstLine.contains(key);
        if (duplicate) {
            error(keyNode, u"duplicate task key %1 (first defined at line %2)"_s.arg(
                               quoted(key), QString::number(firstLine.value(key))));
        } else {
            firstLine.insert(key, pos.line);
        }
        // A broken or repeated key still has a body worth checking: report all at once.
        std::optional<Task> task = parseTask(key, keyNode, value);
        if (task && validKey && !duplicate) {
            m_result.tasks.append(std::move(*task));
            m_result.positions.append(pos);
        }
    }
}

std::optional<Task> Parser::parseTask(const QString &key, const YAML::Node &keyNode,
                                      const YAML::Node &value)
{
    const qsizetype errorsBefore = m_result.errors.size();
    const QString taskName = u"task "_s + quoted(key);
    m_context = taskName;
    const auto clearContext = qScopeGuard([this] { m_context.clear(); });

    if (!value.IsMap()) {
        error(value, u"a task must be a mapping of its settings (title, command, ...), not %1"_s.arg(
                         describe(value)),
              keyNode);
        return std::nullopt;
    }
    const Entries e = entries(value, taskKeys(), u"in "_s + taskName);

    Task task;
    task.key = key;
    readSettings(e, task);

    TemplateNames names;
    names.taskKey = key;
    if (const auto fields = e.find(u"fields"_s); fields != e.end()) {
        if (auto parsed = parseFields(fields->second, key))
            task.fields = std::move(*parsed);
        else
            names.check = false;
        m_context = taskName;
    }
    for (const Field &f : std::as_const(task.fields)) {
        names.fields << f.key;
        if (f.type == FieldType::Secret)
            names.secrets << f.key;
    }

    auto spec = std::make_shared<CommandSpec>();
    spec->fieldKeys = names.fields;
    spec->baseDirectory = m_baseDirectory;
    spec->retryFailures = task.retry.maxAttempts > 1;
    readProgram(e, keyNode, names, *spec);
    readEnvironment(e, names, *spec);

    if (m_result.errors.size() != errorsBefore)
        return std::nullopt;
    task.fn = [shared = std::shared_ptr<const CommandSpec>(std::move(spec))](RunContext &ctx) {
        return runSpec(*shared, ctx);
    };
    return task;
}

void Parser::readSettings(const Entries &e, Task &task)
{
    const auto has = [&](const QString &name) { return e.count(name) > 0; };
    const std::pair<QString, QString *> texts[] = {
        {u"title"_s, &task.title},       {u"description"_s, &task.description},
        {u"category"_s, &task.category}, {u"icon"_s, &task.icon},
        {u"danger"_s, &task.danger},
    };
    for (const auto &[name, target] : texts) {
        if (has(name)) {
            if (const auto v = text(e.at(name), name))
                *target = *v;
        }
    }
    if (has(u"tags"_s)) {
        if (const auto tags = textList(e.at(u"tags"_s), u"tags"_s))
            task.tags = *tags;
    }
    if (has(u"expensive"_s)) {
        if (const auto v = boolean(e.at(u"expensive"_s), u"expensive"_s))
            task.expensive = *v;
    }
    if (has(u"timeout"_s)) {
        if (const auto v = duration(e.at(u"timeout"_s), u"timeout"_s))
            task.timeout = *v;
    }
    if (has(u"retries"_s)) {
        // Attempts are counted in an int by the engine: keep retries + 1 representable.
        if (const auto v = count(e.at(u"retries"_s), u"retries"_s))
            task.retry.maxAttempts = std::min(*v, std::numeric_limits<int>::max() - 1) + 1;
    }
    if (has(u"retry_delay"_s)) {
        const Entry &delay = e.at(u"retry_delay"_s);
        if (const auto v = duration(delay, u"retry_delay"_s)) {
            if (!has(u"retries"_s))
                error(delay.key, u"retry_delay has no effect without retries"_s);
            task.retry.initialDelay = *v;
            task.retry.maxDelay = std::max(task.retry.maxDelay, *v);
        }
    }
    if (has(u"max_concurrent"_s)) {
        if (const auto v = count(e.at(u"max_concurrent"_s), u"max_concurrent"_s))
            task.maxConcurrent = *v;
    }
    if (has(u"start_rate"_s)) {
        if (const auto v = rate(e.at(u"start_rate"_s), u"start_rate"_s))
            task.startRate = *v;
    }
}

void Parser::readProgram(const Entries &e, const YAML::Node &keyNode, const TemplateNames &names,
                         CommandSpec &spec)
{
    const QString taskName = u"task "_s + quoted(names.taskKey);
    const auto command = e.find(u"command"_s);
    const auto shell = e.find(u"shell"_s);
    if (command != e.end() && shell != e.end()) {
        errorAt(offsetOf(shell->second.key),
                u"%1 needs exactly one of command or shell, not both"_s.arg(taskName));
        return;
    }
    if (command == e.end() && shell == e.end()) {
        errorAt(offsetOf(keyNode), u"%1 needs exactly one of command or shell"_s.arg(taskName));
        return;
    }

    if (shell != e.end()) {
        const Entry &s = shell->second;
        spec.isShell = true;
        if (const auto script = text(s, u"shell"_s)) {
            if (script->trimmed().isEmpty())
                error(s.value, u"shell is empty; expected a script for /bin/sh"_s, s.key);
            else if (checkScriptHasNoTemplates(s.value, *script))
                spec.script = *script;
        }
        return;
    }

    const Entry &c = command->second;
    const auto argv = parseCommand(c);
    if (!argv)
        return;
    bool ok = true;
    if (c.value.IsSequence()) {
        for (qsizetype i = 0; i < argv->size(); ++i)
            ok = checkTemplates(c.value[size_t(i)], {argv->at(i)}, names, true) && ok;
    } else {
        ok = checkTemplates(c.value, *argv, names, true);
        // "{{ name }}" unquoted is cut into three arguments by the split and would silently
        // stay literal text.
        const auto countIn = [](const QString &text) {
            qsizetype n = 0;
            for (auto it = templatePattern().globalMatch(text); it.hasNext(); it.next())
                ++n;
            return n;
        };
        qsizetype kept = 0;
        for (const QString &element : *argv)
            kept += countIn(element);
        if (kept != countIn(fromYaml(c.value.Scalar()))) {
            error(c.value, u"a template in the command line is split into several arguments by "
                           u"blanks; write {{name}} without blanks or quote it"_s);
            ok = false;
        }
    }
    if (ok) {
        for (const QString &element : *argv)
            spec.argv.append(splitTemplate(element));
    }
}

void Parser::readEnvironment(const Entries &e, const TemplateNames &names, CommandSpec &spec)
{
    if (const auto cwd = e.find(u"cwd"_s); cwd != e.end()) {
        const Entry &c = cwd->second;
        if (const auto path = text(c, u"cwd"_s)) {
            if (checkTemplates(c.value, {*path}, names, false))
                spec.cwd = splitTemplate(*path);
        }
    }
    if (const auto env = e.find(u"env"_s); env != e.end()) {
        QList<YAML::Node> valueNodes;
        if (const auto variables = parseEnv(env->second, &valueNodes)) {
            for (qsizetype i = 0; i < variables->size(); ++i) {
                const auto &[name, value] = variables->at(i);
                if (checkTemplates(valueNodes.at(i), {value}, names, false))
                    spec.env.append({name, splitTemplate(value)});
            }
        }
    }
}

std::optional<Fields> Parser::parseFields(const Entry &e, const QString &taskKey)
{
    if (!e.value.IsSequence()) {
        error(e.value, u"fields must be a list of mappings (- key: name), not %1"_s.arg(describe(e.value)),
              e.key);
        return std::nullopt;
    }
    const QString taskName = u"task "_s + quoted(taskKey);
    Fields fields;
    bool ok = true;
    QHash<QString, int> firstLine;
    QHash<QString, QString> byVariable;
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
        const YAML::Node item = *it;
        m_context = taskName;
        if (!item.IsMap()) {
            error(item, u"each field must be a mapping with at least a key, not %1"_s.arg(describe(item)),
                  e.key);
            ok = false;
            continue;
        }
        std::optional<Field> field = parseField(item, taskKey);
        m_context = taskName;
        if (!field) {
            ok = false;
            continue;
        }
        const TasksFilePosition pos = positionOf(item);
        if (firstLine.contains(field->key)) {
            error(item, u"duplicate field key %1 (first defined at line %2)"_s.arg(
                            quoted(field->key), QString::number(firstLine.value(field->key))));
            ok = false;
            continue;
        }
        firstLine.insert(field->key, pos.line);
        const QString variable = taskArgumentVariable(field->key);
        if (byVariable.contains(variable)) {
            error(item, u"fields %1 and %2 would both be passed as %3; rename one"_s.arg(
                            quoted(byVariable.value(variable)), quoted(field->key), variable));
            ok = false;
            continue;
        }
        byVariable.insert(variable, field->key);
        fields.append(std::move(*field));
    }
    return ok ? std::optional<Fields>(std::move(fields)) : std::nullopt;
}

std::optional<Field> Parser::parseField(const YAML::Node &item, const QString &taskKey)
{
    const qsizetype errorsBefore = m_result.errors.size();
    const QString taskName = u"task "_s + quoted(taskKey);

    // The key names the field in every other message, so read it before anything else.
    YAML::Node keyValue;
    YAML::Node keyKey;
    bool hasKey = false;
    for (auto it = item.begin(); it != item.end() && !hasKey; ++it) {
        if (it->first.IsScalar() && it->first.Scalar() == "key") {
            keyKey = it->first;
            keyValue = it->second;
            hasKey = true;
        }
    }
    Field field;
    QString where = u"in a field of "_s + taskName;
    if (hasKey && keyValue.IsScalar() && !fromYaml(keyValue.Scalar()).isEmpty()) {
        field.key = fromYaml(keyValue.Scalar());
        where = u"in field "_s + quoted(field.key) + u" of "_s + taskName;
        m_context = taskName + u", field "_s + quoted(field.key);
        if (!isValidFieldKey(field.key)) {
            error(keyValue, u"field key %1 is invalid: expected letters, digits, '_' and '-', "
                            u"starting with a letter or '_'"_s.arg(quoted(field.key)));
        }
    } else if (hasKey && !keyValue.IsNull() && !keyValue.IsScalar()) {
        error(keyValue, u"key must be text, not %1"_s.arg(describe(keyValue)));
    } else if (hasKey) {
        error(keyValue, u"a field needs a key (key: name)"_s, keyKey);
    } else {
        error(item, u"a field needs a key (key: name)"_s);
    }

    const Entries e = entries(item, fieldKeys(), where);
    const auto has = [&](const QString &name) { return e.count(name) > 0; };

    bool typeOk = true;
    if (has(u"type"_s)) {
        const Entry &t = e.at(u"type"_s);
        typeOk = false;
        if (const auto name = text(t, u"type"_s)) {
            if (const auto type = fieldTypeFromName(name->trimmed())) {
                field.type = *type;
                typeOk = true;
            } else {
                error(t.value, u"field type %1 is not one of: %2"_s.arg(quoted(*name),
                                                                         fieldTypeNames().join(u", ")));
            }
        }
    }

    const std::pair<QString, QString *> texts[] = {
        {u"title"_s, &field.title},
        {u"description"_s, &field.description},
        {u"placeholder"_s, &field.placeholder},
    };
    for (const auto &[name, target] : texts) {
        if (has(name)) {
            if (const auto v = text(e.at(name), name))
                *target = *v;
        }
    }
    if (has(u"required"_s)) {
        if (const auto v = boolean(e.at(u"required"_s), u"required"_s))
            field.required = *v;
    }

    const bool isChoice = field.type == FieldType::Select || field.type == FieldType::MultiSelect;
    const bool isText = field.type == FieldType::Text || field.type == FieldType::Textarea
                        || field.type == FieldType::Secret;
    const bool isNumeric = field.type == FieldType::Integer || field.type == FieldType::Number;
    const QString typeName = quoted(fieldTypeName(field.type));

    if (has(u"choices"_s)) {
        const Entry &c = e.at(u"choices"_s);
        if (typeOk && !isChoice) {
            error(c.key, u"choices only apply to select and multiselect fields, not %1"_s.arg(typeName));
        } else if (const auto choices = parseChoices(c)) {
            field.choices = *choices;
        }
    } else if (typeOk && isChoice) {
        const Entry *t = has(u"type"_s) ? &e.at(u"type"_s) : nullptr;
        error(t ? t->value : item, u"a %1 field needs choices"_s.arg(typeName));
    }

    for (const QString &bound : {u"min"_s, u"max"_s}) {
        if (!has(bound))
            continue;
        const Entry &b = e.at(bound);
        if (typeOk && !isText && !isNumeric) {
            error(b.key, u"%1 only applies to integer, number and text fields, not %2"_s.arg(bound, typeName));
            continue;
        }
        const auto v = number(b, bound);
        if (!v)
            continue;
        // Integers and lengths are whole: rounding 1.5 either way would change the bound.
        if ((field.type == FieldType::Integer || isText) && std::trunc(*v) != *v) {
            error(b.value, u"%1 %2 is invalid: expected a whole number for %3 fields"_s.arg(
                                   bound, fromYaml(b.value.Scalar()).trimmed(), typeName));
            continue;
        }
        (bound == u"min" ? field.min : field.max) = *v;
    }
    if (field.min && field.max && *field.min > *field.max) {
        error(e.at(u"max"_s).value, u"max %1 is less than min %2"_s.arg(
                                        QString::number(*field.max), QString::number(*field.min)));
    }

    if (has(u"pattern"_s)) {
        const Entry &p = e.at(u"pattern"_s);
        if (typeOk && !isText) {
            error(p.key, u"pattern only applies to text, textarea and secret fields, not %1"_s.arg(typeName));
        } else if (const auto pattern = text(p, u"pattern"_s)) {
            const QRegularExpression re(*pattern);
            if (!re.isValid()) {
                error(p.value, u"pattern %1 is not a valid regular expression: %2"_s.arg(
                                   quoted(*pattern), re.errorString()));
            } else {
                field.pattern = *pattern;
            }
        }
    }

    // A default is checked against the field as written, so everything else comes first;
    // a field with other mistakes would only make its default's error misleading.
    if (has(u"default"_s) && typeOk && m_result.errors.size() == errorsBefore)
        parseDefault(e.at(u"default"_s), field);

    if (m_result.errors.size() != errorsBefore)
        return std::nullopt;
    return field;
}

std::optional<Field::Choices> Parser::parseChoices(const Entry &e)
{
    Field::Choices choices;
    QHash<QString, int> seen;
    bool ok = true;
    const auto add = [&](const YAML::Node &valueNode, const QString &value, const QString &label) {
        if (seen.contains(value)) {
            error(valueNode, u"duplicate choice %1 (first at line %2)"_s.arg(
                                 quoted(value), QString::number(seen.value(value))));
            ok = false;
            return;
        }
        seen.insert(value, positionOf(valueNode).line);
        choices.append({value, label});
    };
    if (e.value.IsMap()) {
        for (auto it = e.value.begin(); it != e.value.end(); ++it) {
            const YAML::Node value = it->first;
            const YAML::Node label = it->second;
            if (!value.IsScalar()) {
                error(value, u"choice values must be text, not %1"_s.arg(describe(value)));
                ok = false;
            } else if (!label.IsScalar() && !label.IsNull()) {
                error(label, u"the label of choice %1 must be text, not %2"_s.arg(
                                 quoted(fromYaml(value.Scalar())), describe(label)));
                ok = false;
            } else {
                const QString v = fromYaml(value.Scalar());
                add(value, v, label.IsNull() ? v : fromYaml(label.Scalar()));
            }
        }
    } else if (e.value.IsSequence()) {
        for (auto it = e.value.begin(); it != e.value.end(); ++it) {
            const YAML::Node value = *it;
            if (!value.IsScalar()) {
                error(value, u"choice values must be text, not %1"_s.arg(describe(value)), e.value);
                ok = false;
            } else {
                const QString v = fromYaml(value.Scalar());
                add(value, v, v);
            }
        }
    } else {
        error(e.value, u"choices must be a mapping of value to label or a list of values, not %1"_s.arg(
                           describe(e.value)),
              e.key);
        return std::nullopt;
    }
    if (ok && choices.isEmpty()) {
        error(e.value, u"choices lists no values"_s, e.key);
        ok = false;
    }
    return ok ? std::optional<Field::Choices>(choices) : std::nullopt;
}

bool Parser::parseDefault(const Entry &e, Field &field)
{
    QJsonValue raw;
    if (e.value.IsScalar()) {
        raw = fromYaml(e.value.Scalar());
    } else if (e.value.IsSequence() && field.type == FieldType::MultiSelect) {
        QJsonArray items;
        for (auto it = e.value.begin(); it != e.value.end(); ++it) {
            if (!it->IsScalar()) {
                error(*it, u"default values must be text, not %1"_s.arg(describe(*it)), e.value);
                return false;
            }
            items.append(fromYaml(it->Scalar()));
        }
        raw = items;
    } else {
        const QString expected = field.type == FieldType::MultiSelect
                                     ? u"one value or a list of values"_s
                                     : u"one value"_s;
        error(e.value, u"default must be %1, not %2"_s.arg(expected, describe(e.value)), e.key);
        return false;
    }
    // Whether a file exists is a question for when a run starts, not when the file is read:
    // the default may name a file another task creates.
    if (field.type == FieldType::File) {
        field.defaultValue = raw;
        return true;
    }
    QString why;
    const std::optional<QJsonValue> typed = field.coerce(raw, &why);
    if (!typed) {
        const QString given = field.type == FieldType::Secret ? u"(hidden)"_s : describe(e.value);
        error(e.value, u"default %1 is invalid: %2"_s.arg(given, why));
        return false;
    }
    field.defaultValue = *typed;
    return true;
}

bool Parser::checkTemplates(const YAML::Node &node, const QStringList &values,
                            const TemplateNames &names, bool commandLine)
{
    if (!names.check)
        return true;
    bool ok = true;
    QHash<QString, int> seen; // spelling -> occurrences so far, to find each in the source
    const qsizetype start = offsetOf(node);
    for (const QString &value : values) {
        auto it = templatePattern().globalMatch(value);
        while (it.hasNext()) {
            const QRegularExpressionMatch m = it.next();
            const QString spelled = m.captured(0);
            const QString name = m.captured(1);
            const int occurrence = seen[spelled]++;
            QString problem;
            if (!names.fields.contains(name)) {
                const QString known = names.fields.isEmpty() ? u"none"_s : names.fields.join(u", ");
                problem = u"template %1 names no field of task %2; fields: %3"_s.arg(
                    spelled, quoted(names.taskKey), known);
            } else if (commandLine && names.secrets.contains(name)) {
                // Any local user can read a process's arguments; its environment is private.
                problem = u"template %1 would put secret field %2 on the command line, where other "
                          u"users of the machine can read it; read \"$%3\" or pass it in env "
                          u"instead (task %4)"_s.arg(spelled, quoted(name), taskArgumentVariable(name),
                                                     quoted(names.taskKey));
            } else {
                continue;
            }
            ok = false;
            const qsizetype at = m_source.find(start, spelled.toUtf8(), occurrence);
            errorAt(at >= 0 ? at : start, problem);
        }
    }
    return ok;
}

bool Parser::checkScriptHasNoTemplates(const YAML::Node &node, const QString &script)
{
    bool ok = true;
    QHash<QString, int> seen;
    const qsizetype start = offsetOf(node);
    auto it = templatePattern().globalMatch(script);
    while (it.hasNext()) {
        const QRegularExpressionMatch m = it.next();
        const QString spelled = m.captured(0);
        const int occurrence = seen[spelled]++;
        const qsizetype at = m_source.find(start, spelled.toUtf8(), occurrence);
        ok = false;
        errorAt(at >= 0 ? at : start,
                withContext(u"shell scripts are not templated, so that no argument can inject shell "
                            u"code: use \"$%1\" instead of %2"_s.arg(taskArgumentVariable(m.captured(1)),
                                                                      spelled)));
    }
    return ok;
}

std::optional<QStringList> Parser::parseCommand(const Entry &e)
{
    QStringList argv;
    if (e.value.IsSequence()) {
        bool ok = true;
        for (auto it = e.value.begin(); it != e.value.end(); ++it) {
            if (!it->IsScalar()) {
                error(*it, u"command arguments must be text, not %1"_s.arg(describe(*it)), e.value);
                ok = false;
                continue;
            }
            const QString argument = fromYaml(it->Scalar());
            if (!refuseNul(*it, u"command argument %1"_s.arg(argv.size() + 1), argument)) {
                ok = false;
                continue;
            }
            argv << argument;
        }
        if (!ok)
            return std::nullopt;
    } else if (e.value.IsScalar()) {
        const QString line = fromYaml(e.value.Scalar());
        if (!refuseNul(e.value, u"command"_s, line))
            return std::nullopt;
        QString why;
        const auto split = splitCommandLine(line, &why);
        if (!split) {
            error(e.value, u"command cannot be split into arguments: %1"_s.arg(why));
            return std::nullopt;
        }
        argv = *split;
    } else {
        error(e.value, u"command must be a list of arguments or one command line, not %1"_s.arg(
                           describe(e.value)),
              e.key);
        return std::nullopt;
    }
    if (argv.isEmpty() || argv.constFirst().isEmpty()) {
        error(e.value, u"command names no program to run"_s, e.key);
        return std::nullopt;
    }
    return argv;
}

std::optional<QList<QPair<QString, QString>>> Parser::parseEnv(const Entry &e,
                                                               QList<YAML::Node> *valueNodes)
{
    if (!e.value.IsMap()) {
        error(e.value, u"env must be a mapping of variable name to value, not %1"_s.arg(describe(e.value)),
              e.key);
        return std::nullopt;
    }
    QList<QPair<QString, QString>> env;
    QHash<QString, int> firstLine;
    bool ok = true;
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
        const YAML::Node nameNode = it->first;
        const YAML::Node value = it->second;
        if (!nameNode.IsScalar()) {
            error(nameNode, u"env names must be text, not %1"_s.arg(describe(nameNode)));
            ok = false;
            continue;
        }
        const QString name = fromYaml(nameNode.Scalar());
        if (!isValidVariableName(name)) {
            error(nameNode, u"env name %1 is invalid: expected letters, digits and '_', not starting "
                            u"with a digit"_s.arg(quoted(name)));
            ok = false;
        } else if (name.startsWith(ArgumentPrefix)) {
            error(nameNode, u"env name %1 is reserved: %2* variables carry the task's arguments"_s.arg(
                                quoted(name), ArgumentPrefix));
            ok = false;
        } else if (firstLine.contains(name)) {
            error(nameNode, u"duplicate env name %1 (first at line %2)"_s.arg(
                                quoted(name), QString::number(firstLine.value(name))));
            ok = false;
        } else {
            firstLine.insert(name, positionOf(nameNode).line);
        }
        if (!value.IsScalar() && !value.IsNull()) {
            error(value, u"env value of %1 must be text, not %2"_s.arg(quoted(name), describe(value)),
                  nameNode);
            ok = false;
            continue;
        }
        const QString text = value.IsNull() ? QString() : fromYaml(value.Scalar());
        if (!refuseNul(value, u"env value of %1"_s.arg(quoted(name)), text)) {
            ok = false;
            continue;
        }
        env.append({name, text});
        valueNodes->append(value.IsNull() ? nameNode : value);
    }
    return ok ? std::optional<QList<QPair<QString, QString>>>(env) : std::nullopt;
}

} // namespace

QString TasksFileError::toString() const
{
    if (line <= 0)
        return file + u": "_s + message;
    return file + u':' + QString::number(line) + u':' + QString::number(column) + u": "_s + message;
}

TasksFilePosition TasksFileResult::positionOf(const QString &key) const
{
    for (qsizetype i = 0; i < tasks.size() && i < positions.size(); ++i) {
        if (tasks.at(i).key == key)
            return positions.at(i);
    }
    return {};
}

TasksFileResult parseTasksYaml(const QByteArray &yaml, const QString &fileName,
                               const QString &baseDirectory)
{
    // Editors on some systems write a byte order mark; it is not part of line 1's columns.
    QByteArray text = yaml;
    if (text.startsWith("\xEF\xBB\xBF"))
        text.remove(0, 3);
    // A tasks file is UTF-8 (see invalidUtf8Offset()): bytes that are not would reach values
    // replaced, so they are refused where they are.
    if (const qsizetype bad = invalidUtf8Offset(text); bad >= 0) {
        const qsizetype lineStart = bad == 0 ? 0 : text.lastIndexOf('\n', bad - 1) + 1;
        int column = 1;
        for (qsizetype i = lineStart; i < bad; ++i) {
            if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
                ++column;
        }
        TasksFileResult result;
        result.file = fileName;
        result.errors.append(TasksFileError{
                fileName, int(text.left(bad).count('\n') + 1), column,
                u"not valid UTF-8 (byte 0x%1); a tasks file must be UTF-8 text"_s.arg(
                        QString::number(static_cast<unsigned char>(text[bad]), 16).toUpper().rightJustified(2, u'0'))});
        return result;
    }
    Parser parser(text, fileName, baseDirectory);
    return parser.parse();
}

TasksFileResult loadTasksFile(const QString &path, std::optional<QByteArray> *content)
{
    if (content)
        content->reset();
    const auto failed = [&](const QString &message) {
        TasksFileResult r;
        r.file = path;
        r.errors.append(TasksFileError{path, 0, 0, message});
        return r;
    };
    const QFileInfo info(path);
    if (!info.exists()) {
        // A link that leads nowhere is there, just not as a file: say which way it fails.
        struct stat st {};
        if (::stat(QFile::encodeName(path).constData(), &st) != 0 && errno == ELOOP)
            return failed(u"symbolic links in a loop (too many levels of symbolic links)"_s);
        if (info.isSymLink())
            return failed(u"is a symbolic link to %1, which does not exist"_s.arg(info.symLinkTarget()));
        return failed(u"no such file"_s);
    }
    // Devices and pipes never end or block: a tasks file is always a regular file.
    if (!info.isFile())
        return failed(info.isDir() ? u"is a directory, not a tasks file"_s : u"not a regular file"_s);
    if (info.size() > MaxFileBytes)
        return failed(u"too large for a tasks file (%1 bytes)"_s.arg(info.size()));
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return failed(u"cannot read: "_s + file.errorString());
    const QByteArray bytes = file.read(MaxFileBytes + 1);
    if (file.error() != QFileDevice::NoError)
        return failed(u"cannot read: "_s + file.errorString());
    if (content)
        *content = bytes;
    return parseTasksYaml(bytes, path, info.absolutePath());
}

QString findTasksFile(const QString &explicitPath, const QProcessEnvironment &env,
                      const QString &workingDirectory)
{
    const QDir cwd(workingDirectory.isEmpty() ? QDir::currentPath() : workingDirectory);
    const auto resolved = [&](const QString &p) {
        return workingDirectory.isEmpty() || QDir::isAbsolutePath(p) ? p : cwd.filePath(p);
    };
    if (!explicitPath.isEmpty())
        return resolved(explicitPath);
    const QString fromEnv = env.value(TaskFileVariable);
    if (!fromEnv.isEmpty())
        return resolved(fromEnv);
    const QString local = cwd.filePath(DefaultFileName);
    if (QFileInfo(local).isFile())
        return local;
    return QStandardPaths::locate(QStandardPaths::AppConfigLocation, DefaultFileName);
}

QString taskArgumentVariable(const QString &fieldKey)
{
    QString name = ArgumentPrefix + fieldKey.toUpper();
    for (qsizetype i = ArgumentPrefix.size(); i < name.size(); ++i) {
        const QChar c = name.at(i);
        if (!((c >= u'A' && c <= u'Z') || (c >= u'0' && c <= u'9')))
            name[i] = u'_';
    }
    return name;
}

} // namespace taskdeck
