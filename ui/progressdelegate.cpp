// SPDX-License-Identifier: MIT
#include "progressdelegate.h"

#include "run.h"
#include "runsmodel.h"

#include <QApplication>
#include <QPainter>
#include <QStyleOptionProgressBar>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

ProgressDelegate::ProgressDelegate(QObject *parent)
    : QStyledItemDelegate(parent)
{
}

void ProgressDelegate::paint(QPainter *painter, const QStyleOptionViewItem &option,
                             const QModelIndex &index) const
{
    const int percent = index.data(RunTableModel::ProgressRole).toInt();
    const auto status = RunStatus(index.data(RunTableModel::StatusRole).toInt());
    const bool live = !isTerminal(status);
    // A bar for runs that are working or got somewhere; waiting runs show their text only.
    if (percent < 0 && status != RunStatus::Running) {
        QStyledItemDelegate::paint(painter, option, index);
        return;
    }

    const QWidget *widget = option.widget;
    QStyle *style = widget ? widget->style() : QApplication::style();
    // The row's selection background first, then the bar inside the cell's margins.
    QStyleOptionViewItem cell = option;
    initStyleOption(&cell, index);
    cell.text.clear();
    style->drawPrimitive(QStyle::PE_PanelItemViewItem, &cell, painter, widget);

    QStyleOptionProgressBar bar;
    if (widget)
        bar.initFrom(widget);
    // Not the row's selected state: the bar keeps its own colours on a selected row.
    bar.state = (option.state & QStyle::State_Enabled) | QStyle::State_Horizontal;
    bar.direction = option.direction;
    bar.fontMetrics = option.fontMetrics;
    bar.palette = widget ? widget->palette() : option.palette;
    bar.rect = option.rect.adjusted(2, 2, -2, -2);
    bar.minimum = 0;
    bar.maximum = percent < 0 ? 0 : 100; // 0..0: the style's busy bar
    bar.progress = percent < 0 ? 0 : qBound(0, percent, 100);
    bar.text = index.data(Qt::DisplayRole).toString();
    bar.textVisible = true;
    bar.textAlignment = Qt::AlignCenter;
    if (!live && status != RunStatus::Succeeded)
        bar.state &= ~QStyle::State_Enabled; // a run that stopped short is greyed
    style->drawControl(QStyle::CE_ProgressBar, &bar, painter, widget);
}

QSize ProgressDelegate::sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const
{
    QSize size = QStyledItemDelegate::sizeHint(option, index);
    size.setWidth(qMax(size.width() + 16, 160));
    return size;
}

} // namespace taskdeck::ui
