// SPDX-License-Identifier: MIT
#pragma once

#include <QJsonValue>
#include <QWidget>

class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QStackedWidget;
class QTabWidget;
class QTableView;
class QTreeView;

namespace taskdeck::ui {

class JsonModel;
class JsonTableModel;

/*!
 * A run's JSON result in three views: Tree (key, value, type; opened up to three levels
 * deep while that shows at most a few hundred rows),
 * Raw (indented JSON, read-only, monospace) and Table (when the result, or one of its
 * top-level members, is an array of objects; a choice of member when several are), plus a
 * Copy button that puts the whole JSON on the clipboard. An empty result shows
 * "No result".
 */
class ResultView final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(ResultView)

public:
    /*! Raw text beyond this many characters is cut (Copy still copies everything). */
    static constexpr qsizetype MaxRawChars = 4 * 1024 * 1024;

    explicit ResultView(QWidget *parent = nullptr);
    ~ResultView() override;

    /*! Shows \a result; undefined (or an empty result) shows the placeholder. */
    void setResult(const QJsonValue &result);
    void clear();
    QJsonValue result() const { return m_result; }

    /*! True while the placeholder shows instead of the views. */
    bool isEmpty() const;

    QTabWidget *tabs() const { return m_tabs; }
    QTreeView *treeView() const { return m_tree; }
    QTableView *tableView() const { return m_table; }
    QPlainTextEdit *rawView() const { return m_raw; }
    QPushButton *copyButton() const { return m_copy; }
    /*! Chooses the member the table shows, when several qualify; empty names the root. */
    QComboBox *tableSourceBox() const { return m_tableSource; }
    bool isTableAvailable() const;

public Q_SLOTS:
    /*! Puts the whole result, as indented JSON, on the clipboard. */
    void copyToClipboard();

private:
    void showTableSource(int index);
    void expandSensibly();

    QJsonValue m_result;
    QStackedWidget *m_stack = nullptr;
    QLabel *m_placeholder = nullptr;
    QTabWidget *m_tabs = nullptr;
    QTreeView *m_tree = nullptr;
    QPlainTextEdit *m_raw = nullptr;
    QWidget *m_tablePage = nullptr;
    QLabel *m_tableSourceLabel = nullptr;
    QComboBox *m_tableSource = nullptr;
    QTableView *m_table = nullptr;
    QPushButton *m_copy = nullptr;
    JsonModel *m_model = nullptr;
    JsonTableModel *m_tableModel = nullptr;
    int m_tableTab = -1;
};

} // namespace taskdeck::ui
