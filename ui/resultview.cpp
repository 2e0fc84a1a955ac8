// SPDX-License-Identifier: MIT
#include "resultview.h"

#include "jsonmodel.h"

#include <QClipboard>
#include <QComboBox>
#include <QFontDatabase>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonObject>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QStackedWidget>
#include <QTabWidget>
#include <QTableView>
#include <QTreeView>
#include <QVBoxLayout>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

ResultView::ResultView(QWidget *parent)
    : QWidget(parent)
{
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    m_stack = new QStackedWidget(this);
    layout->addWidget(m_stack);

    m_placeholder = new QLabel(tr("No result"), m_stack);
    m_placeholder->setAlignment(Qt::AlignCenter);
    QPalette muted = m_placeholder->palette();
    muted.setColor(QPalette::WindowText, muted.color(QPalette::PlaceholderText));
    m_placeholder->setPalette(muted);
    m_stack->addWidget(m_placeholder);

    m_tabs = new QTabWidget(m_stack);
    m_tabs->setDocumentMode(true);
    m_stack->addWidget(m_tabs);

    m_model = new JsonModel(this);
    m_tree = new QTreeView(m_tabs);
    m_tree->setModel(m_model);
    m_tree->setUniformRowHeights(true);
    m_tree->setAlternatingRowColors(true);
    m_tree->setAccessibleName(tr("Result tree"));
    m_tree->header()->setStretchLastSection(false);
    m_tree->header()->setSectionResizeMode(JsonModel::KeyColumn, QHeaderView::Interactive);
    m_tree->header()->setSectionResizeMode(JsonModel::ValueColumn, QHeaderView::Stretch);
    m_tree->header()->setSectionResizeMode(JsonModel::TypeColumn, QHeaderView::ResizeToContents);
    m_tree->setColumnWidth(JsonModel::KeyColumn, 180);
    m_tabs->addTab(m_tree, tr("&Tree"));

    m_raw = new QPlainTextEdit(m_tabs);
    m_raw->setReadOnly(true);
    m_raw->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_raw->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_raw->setAccessibleName(tr("Result as JSON"));
    m_tabs->addTab(m_raw, tr("R&aw"));

    m_tablePage = new QWidget(m_tabs);
    auto *tableLayout = new QVBoxLayout(m_tablePage);
    tableLayout->setContentsMargins(0, 4, 0, 0);
    auto *sourceRow = new QHBoxLayout;
    m_tableSourceLabel = new QLabel(tr("&Member:"), m_tablePage);
    m_tableSource = new QComboBox(m_tablePage);
    m_tableSource->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_tableSourceLabel->setBuddy(m_tableSource);
    sourceRow->addWidget(m_tableSourceLabel);
    sourceRow->addWidget(m_tableSource);
    sourceRow->addStretch();
    tableLayout->addLayout(sourceRow);
    m_tableModel = new JsonTableModel(this);
    m_table = new QTableView(m_tablePage);
    m_table->setModel(m_tableModel);
    m_table->setAlternatingRowColors(true);
    m_table->setAccessibleName(tr("Result table"));
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 6);
    tableLayout->addWidget(m_table);
    m_tableTab = m_tabs->addTab(m_tablePage, tr("Ta&ble"));
    connect(m_tableSource, &QComboBox::currentIndexChanged, this, &ResultView::showTableSource);

    m_copy = new QPushButton(QIcon::fromTheme(u"edit-copy"_s), tr("&Copy"), m_tabs);
    m_copy->setToolTip(tr("Copy the whole result as JSON"));
    connect(m_copy, &QPushButton::clicked, this, &ResultView::copyToClipboard);
    m_tabs->setCornerWidget(m_copy, Qt::TopRightCorner);

    clear();
}

ResultView::~ResultView() = default;

void ResultView::clear()
{
    setResult(QJsonValue::Undefined);
}

bool ResultView::isEmpty() const
{
    return m_stack->currentWidget() == m_placeholder;
}

bool ResultView::isTableAvailable() const
{
    return m_tabs->isTabVisible(m_tableTab);
}

void ResultView::setResult(const QJsonValue &result)
{
    m_result = result;
    const bool empty = result.isUndefined() || result.isNull()
                       || (result.isObject() && result.toObject().isEmpty())
                       || (result.isArray() && result.toArray().isEmpty());
    m_stack->setCurrentWidget(empty ? static_cast<QWidget *>(m_placeholder) : m_tabs);
    m_copy->setEnabled(!empty);

    m_model->setJson(empty ? QJsonValue(QJsonValue::Undefined) : result);
    expandSensibly();

    QString raw = jsonToText(result);
    if (raw.size() > MaxRawChars) {
        raw.truncate(MaxRawChars);
        raw += u"\n\n"_s + tr("… (cut at %1 characters; Copy copies the whole result)")
                               .arg(MaxRawChars);
    }
    m_raw->setPlainText(raw);

    // The root itself, or any top-level member, can be the table.
    const QSignalBlocker blocker(m_tableSource);
    m_tableSource->clear();
    if (JsonTableModel::isTable(result))
        m_tableSource->addItem(tr("(whole result)"), QString());
    if (result.isObject()) {
        const QJsonObject object = result.toObject();
        for (auto it = object.constBegin(); it != object.constEnd(); ++it) {
            if (JsonTableModel::isTable(it.value()))
                m_tableSource->addItem(it.key(), it.key());
        }
    }
    const bool hasTable = m_tableSource->count() > 0;
    m_tabs->setTabVisible(m_tableTab, hasTable);
    m_tableSource->setVisible(m_tableSource->count() > 1);
    m_tableSourceLabel->setVisible(m_tableSource->count() > 1);
    showTableSource(hasTable ? 0 : -1);
    if (!hasTable && m_tabs->currentIndex() == m_tableTab)
        m_tabs->setCurrentIndex(0);
}

void ResultView::expandSensibly()
{
    // Opens level after level (three at most) while everything shown stays within about
    // two screens of rows; a long array stays closed instead of flooding the view.
    constexpr qsizetype RowBudget = 300;
    const auto sizeOf = [this](const QModelIndex &index) -> qsizetype {
        const QJsonValue v = index.data(JsonModel::JsonValueRole).value<QJsonValue>();
        return v.isObject() ? v.toObject().size() : v.isArray() ? v.toArray().size() : 0;
    };
    qsizetype shown = m_model->rowCount();
    QList<QModelIndex> level{QModelIndex()};
    for (int depth = 0; depth < 3 && !level.isEmpty(); ++depth) {
        QList<QModelIndex> next;
        qsizetype added = 0;
        for (const QModelIndex &parent : std::as_const(level)) {
            for (int r = 0, n = m_model->rowCount(parent); r < n && shown + added <= RowBudget;
                 ++r) {
                const QModelIndex child = m_model->index(r, 0, parent);
                if (const qsizetype size = sizeOf(child); size > 0) {
                    next << child;
                    added += size;
                }
            }
        }
        if (shown + added > RowBudget)
            return;
        for (const QModelIndex &index : std::as_const(next))
            m_tree->expand(index);
        shown += added;
        level = next;
    }
}

void ResultView::showTableSource(int index)
{
    if (index < 0) {
        m_tableModel->setArray(QJsonArray());
        return;
    }
    const QString member = m_tableSource->itemData(index).toString();
    const QJsonValue source = member.isEmpty() ? m_result : m_result.toObject().value(member);
    m_tableModel->setArray(source.toArray());
    m_table->resizeColumnsToContents();
}

void ResultView::copyToClipboard()
{
    if (m_result.isUndefined())
        return;
    QGuiApplication::clipboard()->setText(jsonToText(m_result));
}

} // namespace taskdeck::ui
