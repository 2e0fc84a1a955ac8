// SPDX-License-Identifier: MIT
#include "jsonmodel.h"

#include "field.h"

#include <QGuiApplication>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocale>
#include <QPalette>
#include <QSet>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

constexpr qsizetype MaxCellText = 200;

QColor mutedColor()
{
    return QGuiApplication::palette().color(QPalette::PlaceholderText);
}

QString numberText(const QJsonValue &value)
{
    if (const std::optional<qint64> i = exactInteger(value))
        return QString::number(*i);
    return QString::number(value.toDouble(), 'g', QLocale::FloatingPointShortest);
}

} // namespace

QString jsonTypeName(const QJsonValue &value)
{
    switch (value.type()) {
    case QJsonValue::Object:
        return u"object"_s;
    case QJsonValue::Array:
        return u"array"_s;
    case QJsonValue::String:
        return u"string"_s;
    case QJsonValue::Double:
        return u"number"_s;
    case QJsonValue::Bool:
        return u"boolean"_s;
    case QJsonValue::Null:
    case QJsonValue::Undefined:
        break;
    }
    return u"null"_s;
}

QString jsonToText(const QJsonValue &value, bool indented)
{
    const auto format = indented ? QJsonDocument::Indented : QJsonDocument::Compact;
    if (value.isObject())
        return QString::fromUtf8(QJsonDocument(value.toObject()).toJson(format)).trimmed();
    if (value.isArray())
        return QString::fromUtf8(QJsonDocument(value.toArray()).toJson(format)).trimmed();
    if (value.isUndefined())
        return QString();
    // A scalar is written inside a one-item array, then unwrapped: the same escaping and
    // number format as for values inside containers.
    const QString wrapped =
        QString::fromUtf8(QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact));
    return wrapped.mid(1, wrapped.size() - 2);
}

QString jsonDisplayText(const QJsonValue &value, bool quoteStrings)
{
    switch (value.type()) {
    case QJsonValue::Object: {
        // Spelled out rather than "%n key(s)": the English text is shown untranslated.
        const qsizetype n = value.toObject().size();
        return n == 1 ? JsonModel::tr("{1 key}") : JsonModel::tr("{%1 keys}").arg(n);
    }
    case QJsonValue::Array: {
        const qsizetype n = value.toArray().size();
        return n == 1 ? JsonModel::tr("[1 item]") : JsonModel::tr("[%1 items]").arg(n);
    }
    case QJsonValue::Double:
        return numberText(value);
    case QJsonValue::Bool:
        return value.toBool() ? u"true"_s : u"false"_s;
    case QJsonValue::String: {
        QString s = value.toString();
        bool cut = false;
        if (const qsizetype nl = s.indexOf(u'\n'); nl >= 0) {
            s.truncate(nl);
            cut = true;
        }
        if (s.size() > MaxCellText) {
            s.truncate(MaxCellText);
            cut = true;
        }
        if (quoteStrings) {
            s = jsonToText(QJsonValue(s));
            if (cut)
                s.insert(s.size() - 1, u'…');
            return s;
        }
        return cut ? s + u'…' : s;
    }
    case QJsonValue::Null:
        return u"null"_s;
    case QJsonValue::Undefined:
        break;
    }
    return QString();
}

struct JsonModel::Node
{
    QString key;
    QJsonValue value;
    Node *parent = nullptr;
    int row = 0;
    bool populated = false;
    std::vector<std::unique_ptr<Node>> children;
};

JsonModel::JsonModel(QObject *parent)
    : QAbstractItemModel(parent)
    , m_rootNode(std::make_unique<Node>())
{
}

JsonModel::~JsonModel() = default;

void JsonModel::setJson(const QJsonValue &value)
{
    beginResetModel();
    m_root = value;
    m_rootNode = std::make_unique<Node>();
    m_rootNode->value = value;
    if (!value.isObject() && !value.isArray() && !value.isUndefined()) {
        // A scalar result is one row of its own.
        auto only = std::make_unique<Node>();
        only->key = tr("(value)");
        only->value = value;
        only->parent = m_rootNode.get();
        m_rootNode->children.push_back(std::move(only));
        m_rootNode->populated = true;
    }
    endResetModel();
}

JsonModel::Node *JsonModel::nodeOf(const QModelIndex &index) const
{
    return index.isValid() ? static_cast<Node *>(index.internalPointer()) : m_rootNode.get();
}

qsizetype JsonModel::childCount(const Node *node)
{
    if (node->value.isObject())
        return node->value.toObject().size();
    if (node->value.isArray())
        return node->value.toArray().size();
    return static_cast<qsizetype>(node->children.size());
}

void JsonModel::appendChildren(Node *node, qsizetype count) const
{
    const auto first = static_cast<qsizetype>(node->children.size());
    const qsizetype last = std::min(childCount(node), first + count);
    node->children.reserve(static_cast<size_t>(last));
    if (node->value.isObject()) {
        const QJsonObject object = node->value.toObject();
        auto it = object.constBegin() + first;
        for (qsizetype i = first; i < last; ++i, ++it) {
            auto child = std::make_unique<Node>();
            child->key = it.key();
            child->value = it.value();
            child->parent = node;
            child->row = static_cast<int>(i);
            node->children.push_back(std::move(child));
        }
    } else if (node->value.isArray()) {
        const QJsonArray array = node->value.toArray();
        for (qsizetype i = first; i < last; ++i) {
            auto child = std::make_unique<Node>();
            child->key = u'[' + QString::number(i) + u']';
            child->value = array.at(i);
            child->parent = node;
            child->row = static_cast<int>(i);
            node->children.push_back(std::move(child));
        }
    }
}

void JsonModel::ensureChildren(Node *node) const
{
    // The first rows are made on first request and count as having been there all along,
    // so no insert signals are due; the rest come through fetchMore().
    if (node->populated)
        return;
    node->populated = true;
    appendChildren(node, FetchChunk);
}

bool JsonModel::canFetchMore(const QModelIndex &parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return false;
    const Node *p = nodeOf(parent);
    return p->populated && static_cast<qsizetype>(p->children.size()) < childCount(p);
}

void JsonModel::fetchMore(const QModelIndex &parent)
{
    if (!canFetchMore(parent))
        return;
    Node *p = nodeOf(parent);
    const auto first = static_cast<int>(p->children.size());
    const auto last = static_cast<int>(std::min(childCount(p), first + FetchChunk) - 1);
    beginInsertRows(parent, first, last);
    appendChildren(p, FetchChunk);
    endInsertRows();
}

QModelIndex JsonModel::index(int row, int column, const QModelIndex &parent) const
{
    if (column < 0 || column >= ColumnCount || row < 0)
        return QModelIndex();
    Node *p = nodeOf(parent);
    ensureChildren(p);
    if (static_cast<size_t>(row) >= p->children.size())
        return QModelIndex();
    return createIndex(row, column, p->children[static_cast<size_t>(row)].get());
}

QModelIndex JsonModel::parent(const QModelIndex &child) const
{
    if (!child.isValid())
        return QModelIndex();
    const Node *node = nodeOf(child);
    Node *p = node->parent;
    if (!p || p == m_rootNode.get())
        return QModelIndex();
    return createIndex(p->row, 0, p);
}

int JsonModel::rowCount(const QModelIndex &parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return 0;
    Node *p = nodeOf(parent);
    ensureChildren(p);
    return static_cast<int>(p->children.size());
}

int JsonModel::columnCount(const QModelIndex &parent) const
{
    Q_UNUSED(parent)
    return ColumnCount;
}

bool JsonModel::hasChildren(const QModelIndex &parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return false;
    return childCount(nodeOf(parent)) > 0;
}

QVariant JsonModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid())
        return QVariant();
    const Node *node = nodeOf(index);
    const QJsonValue &v = node->value;
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case KeyColumn:
            return node->key;
        case ValueColumn:
            return jsonDisplayText(v, true);
        case TypeColumn:
            return jsonTypeName(v);
        default:
            return QVariant();
        }
    case Qt::ToolTipRole:
        if (index.column() == ValueColumn && v.isString())
            return v.toString().left(4000);
        return QVariant();
    case Qt::ForegroundRole:
        if ((index.column() == ValueColumn && (v.isNull() || v.isObject() || v.isArray()))
            || index.column() == TypeColumn) {
            return mutedColor();
        }
        return QVariant();
    case JsonValueRole:
        return QVariant::fromValue(v);
    default:
        return QVariant();
    }
}

QVariant JsonModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QVariant();
    switch (section) {
    case KeyColumn:
        return tr("Key");
    case ValueColumn:
        return tr("Value");
    case TypeColumn:
        return tr("Type");
    default:
        return QVariant();
    }
}

JsonTableModel::JsonTableModel(QObject *parent)
    : QAbstractTableModel(parent)
{
}

JsonTableModel::~JsonTableModel() = default;

bool JsonTableModel::isTable(const QJsonValue &value)
{
    if (!value.isArray())
        return false;
    const QJsonArray array = value.toArray();
    if (array.isEmpty())
        return false;
    for (const QJsonValue &item : array) {
        if (!item.isObject())
            return false;
    }
    return true;
}

void JsonTableModel::setArray(const QJsonArray &array)
{
    beginResetModel();
    m_array = array;
    m_columns.clear();
    QSet<QString> seen;
    for (const QJsonValue &item : array) {
        const QJsonObject object = item.toObject();
        for (auto it = object.constBegin(); it != object.constEnd(); ++it) {
            if (!seen.contains(it.key())) {
                seen.insert(it.key());
                m_columns << it.key();
            }
        }
    }
    endResetModel();
}

int JsonTableModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_array.size());
}

int JsonTableModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_columns.size());
}

QVariant JsonTableModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= m_array.size() || index.column() >= m_columns.size())
        return QVariant();
    const QJsonObject object = m_array.at(index.row()).toObject();
    const QJsonValue v = object.value(m_columns.at(index.column()));
    switch (role) {
    case Qt::DisplayRole:
        return jsonDisplayText(v, false);
    case Qt::ToolTipRole:
        return v.isString() ? QVariant(v.toString().left(4000)) : QVariant();
    case Qt::ForegroundRole:
        return v.isNull() || v.isObject() || v.isArray() ? QVariant(mutedColor()) : QVariant();
    case Qt::TextAlignmentRole:
        return v.isDouble() ? QVariant(Qt::AlignRight | Qt::AlignVCenter) : QVariant();
    case JsonModel::JsonValueRole:
        return QVariant::fromValue(v);
    default:
        return QVariant();
    }
}

QVariant JsonTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole)
        return QVariant();
    if (orientation == Qt::Horizontal)
        return section < m_columns.size() ? QVariant(m_columns.at(section)) : QVariant();
    return section + 1;
}

} // namespace taskdeck::ui
