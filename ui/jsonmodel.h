// SPDX-License-Identifier: MIT
#pragma once

#include <QAbstractItemModel>
#include <QAbstractTableModel>
#include <QJsonArray>
#include <QJsonValue>
#include <QStringList>

#include <memory>
#include <vector>

namespace taskdeck::ui {

/*!
 * The text a JSON value shows in a cell: numbers as JSON writes them (whole numbers
 * exactly), true/false, null, strings quoted as in JSON when \a quoteStrings (else as they
 * are), and a count for objects ("{3 keys}") and arrays ("[2 items]"). Long or multi-line
 * strings are cut at the first line break or 200 characters with an ellipsis.
 */
QString jsonDisplayText(const QJsonValue &value, bool quoteStrings);
/*! "object", "array", "string", "number", "boolean" or "null". */
QString jsonTypeName(const QJsonValue &value);
/*! \a value as indented JSON text; scalars too (QJsonDocument only holds containers). */
QString jsonToText(const QJsonValue &value, bool indented = true);

/*!
 * A tree over one JSON value with the columns Key, Value and Type. Object members and
 * array items are children (items keyed [0], [1], ...); a scalar root is one row. Rows
 * are made when a view first asks for them, so a large result costs only what is shown.
 * Strings are shown quoted, null in a muted colour. JsonValueRole gives each row's value.
 */
class JsonModel final : public QAbstractItemModel
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(JsonModel)

public:
    enum Column { KeyColumn, ValueColumn, TypeColumn, ColumnCount };
    enum Role { JsonValueRole = Qt::UserRole + 1 };
    /*! Rows made at a time under one parent; views ask for more as they scroll. */
    static constexpr qsizetype FetchChunk = 500;

    explicit JsonModel(QObject *parent = nullptr);
    ~JsonModel() override;

    void setJson(const QJsonValue &value);
    QJsonValue json() const { return m_root; }

    QModelIndex index(int row, int column, const QModelIndex &parent = QModelIndex()) const override;
    QModelIndex parent(const QModelIndex &child) const override;
    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    bool hasChildren(const QModelIndex &parent = QModelIndex()) const override;
    bool canFetchMore(const QModelIndex &parent) const override;
    void fetchMore(const QModelIndex &parent) override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    struct Node;
    Node *nodeOf(const QModelIndex &index) const;
    static qsizetype childCount(const Node *node);
    void appendChildren(Node *node, qsizetype count) const;
    void ensureChildren(Node *node) const;

    QJsonValue m_root;
    std::unique_ptr<Node> m_rootNode;
};

/*!
 * A table over an array of objects: one row per item, one column per key (the union of
 * every item's keys, in order of first appearance; items that are not objects give empty
 * rows). Cells show jsonDisplayText() with strings unquoted; a missing key is
 * an empty cell, null is muted.
 */
class JsonTableModel final : public QAbstractTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(JsonTableModel)

public:
    explicit JsonTableModel(QObject *parent = nullptr);
    ~JsonTableModel() override;

    void setArray(const QJsonArray &array);
    QStringList columns() const { return m_columns; }

    /*! Whether \a value is a non-empty array whose items are all objects. */
    static bool isTable(const QJsonValue &value);

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    QJsonArray m_array;
    QStringList m_columns;
};

} // namespace taskdeck::ui
