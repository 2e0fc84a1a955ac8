// SPDX-License-Identifier: MIT
#include "taskicons.h"

#include <QFile>
#include <QGuiApplication>
#include <QPalette>
#include <QHash>
#include <QImageReader>
#include <QPainter>
#include <QPixmap>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

QString resourcePath(const QString &name)
{
    return u":/icons/tasks/"_s + name + u".svg"_s;
}

bool svgSupported()
{
    static const bool supported = QImageReader::supportedImageFormats().contains("svg");
    return supported;
}

// Without Qt's SVG plugin the drawings cannot be shown: a tile with the name's first letter
// keeps every row marked in \a colour rather than blank.
QIcon letterTile(const QString &name, const QColor &colour)
{
    QIcon icon;
    for (const int size : {16, 24, 32, 48}) {
        QPixmap pixmap(size, size);
        pixmap.fill(Qt::transparent);
        QPainter painter(&pixmap);
        painter.setRenderHint(QPainter::Antialiasing);
        painter.setPen(Qt::NoPen);
        painter.setBrush(colour);
        painter.drawRoundedRect(QRectF(0.5, 0.5, size - 1.0, size - 1.0), size / 5.0, size / 5.0);
        QFont font = painter.font();
        font.setPixelSize(size * 5 / 8);
        font.setBold(true);
        painter.setFont(font);
        painter.setPen(Qt::white);
        painter.drawText(QRect(0, 0, size, size), Qt::AlignCenter, name.left(1).toUpper());
        painter.end();
        icon.addPixmap(pixmap);
    }
    return icon;
}

// The task drawings are lines in one blue, close to the highlight of a selected row, where
// they would all but vanish: selected, they are drawn in the highlighted text's colour. The
// icon is made of pixmaps, since an SVG icon uses pixmaps given for a mode only at the exact
// size they were given.
QIcon linesWithSelectedInTextColour(const QString &path)
{
    const QIcon drawing(path);
    const QColor colour = QGuiApplication::palette().color(QPalette::HighlightedText);
    QIcon icon;
    for (const int size : {16, 20, 22, 24, 32, 48, 64, 96}) {
        const QPixmap normal = drawing.pixmap(size, size);
        icon.addPixmap(normal, QIcon::Normal);
        QPixmap selected = normal;
        QPainter painter(&selected);
        painter.setCompositionMode(QPainter::CompositionMode_SourceIn);
        painter.fillRect(selected.rect(), colour);
        painter.end();
        icon.addPixmap(selected, QIcon::Selected);
    }
    return icon;
}

enum class Drawing { Coloured, Lines };

QIcon bundled(const QString &name, const QColor &fallbackColour, Drawing drawing = Drawing::Coloured)
{
    static QHash<QString, QIcon> cache;
    const auto it = cache.constFind(name);
    if (it != cache.constEnd())
        return *it;
    QIcon icon;
    const QString path = resourcePath(name);
    if (svgSupported() && QFile::exists(path)) {
        icon = drawing == Drawing::Lines ? linesWithSelectedInTextColour(path) : QIcon(path);
    } else {
        icon = letterTile(name, fallbackColour);
    }
    cache.insert(name, icon);
    return icon;
}

const QColor kTaskColour(0x3f, 0x7f, 0xc4);

} // namespace

QStringList bundledTaskIconNames()
{
    return {u"cpu"_s,      u"database"_s, u"file-text"_s, u"fingerprint"_s, u"globe"_s,
            u"hand-wave"_s, u"hard-drive"_s, u"list-ordered"_s, u"pencil"_s, u"pie-chart"_s,
            u"refresh"_s,  u"task"_s,     u"terminal"_s,  u"timer"_s,       u"trash"_s};
}

QIcon taskIcon(const QString &iconName)
{
    const bool ours = bundledTaskIconNames().contains(iconName);
    const QIcon fallback = bundled(ours ? iconName : u"task"_s, kTaskColour, Drawing::Lines);
    if (iconName.isEmpty())
        return fallback;
    return QIcon::fromTheme(iconName, fallback);
}

QIcon dangerBadgeIcon()
{
    return bundled(u"badge-danger"_s, QColor(0xd6, 0x3c, 0x3c));
}

QIcon expensiveBadgeIcon()
{
    return bundled(u"badge-expensive"_s, QColor(0xd9, 0x93, 0x0d));
}

QIcon runStatusIcon(RunStatus status)
{
    switch (status) {
    case RunStatus::Queued: return bundled(u"status-queued"_s, QColor(0x8a, 0x94, 0xa0));
    case RunStatus::Running: return bundled(u"status-running"_s, QColor(0x2f, 0x7f, 0xd1));
    case RunStatus::Retrying: return bundled(u"status-retrying"_s, QColor(0xc9, 0x8a, 0x12));
    case RunStatus::Succeeded: return bundled(u"status-succeeded"_s, QColor(0x2e, 0x9d, 0x4f));
    case RunStatus::Failed: return bundled(u"status-failed"_s, QColor(0xd6, 0x3c, 0x3c));
    case RunStatus::Canceled: return bundled(u"status-canceled"_s, QColor(0x7a, 0x82, 0x8c));
    case RunStatus::TimedOut: return bundled(u"status-timedout"_s, QColor(0xc0, 0x58, 0x2a));
    case RunStatus::Interrupted: return bundled(u"status-interrupted"_s, QColor(0x9a, 0x4f, 0xc4));
    }
    return bundled(u"status-queued"_s, QColor(0x8a, 0x94, 0xa0));
}

} // namespace taskdeck::ui
