// SPDX-License-Identifier: MIT
#pragma once

#include <QStyledItemDelegate>

namespace taskdeck::ui {

/*!
 * Paints the progress column of a RunTableModel as a progress bar drawn by the view's style,
 * labelled with the column's text ("61% · ETA 4s"). Running runs whose progress is unknown
 * get the style's busy (indeterminate) bar; other runs without progress (queued, waiting to
 * retry, finished) show their text only.
 */
class ProgressDelegate final : public QStyledItemDelegate
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(ProgressDelegate)

public:
    explicit ProgressDelegate(QObject *parent = nullptr);

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override;
    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const override;
};

} // namespace taskdeck::ui
