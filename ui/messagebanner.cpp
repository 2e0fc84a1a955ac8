// SPDX-License-Identifier: MIT
#include "messagebanner.h"

#include "theme.h"

#include <QAccessible>
#include <QAction>
#include <QApplication>
#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QPainter>
#include <QStyle>
#include <QToolButton>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

MessageBanner::MessageBanner(QWidget *parent)
    : MessageBanner(Type::Information, QString(), parent)
{
}

MessageBanner::MessageBanner(Type type, const QString &text, QWidget *parent)
    : QFrame(parent)
    , m_type(type)
{
    setFrameShape(QFrame::NoFrame);
    setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Maximum);

    auto *layout = new QHBoxLayout(this);
    layout->setContentsMargins(10, 6, 6, 6);
    layout->setSpacing(8);

    m_icon = new QLabel(this);
    m_icon->setAlignment(Qt::AlignTop | Qt::AlignHCenter);
    layout->addWidget(m_icon, 0, Qt::AlignTop);

    m_text = new QLabel(text, this);
    m_text->setWordWrap(true);
    m_text->setTextFormat(Qt::PlainText);
    m_text->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_text->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
    layout->addWidget(m_text, 1);

    m_actionsLayout = new QHBoxLayout;
    m_actionsLayout->setSpacing(4);
    layout->addLayout(m_actionsLayout);

    m_close = new QToolButton(this);
    m_close->setAutoRaise(true);
    m_close->setText(tr("Close"));
    m_close->setToolTip(tr("Close"));
    m_close->setAccessibleName(tr("Close message"));
    m_close->setIcon(QIcon::fromTheme(u"window-close"_s,
                                      style()->standardIcon(QStyle::SP_TitleBarCloseButton)));
    m_close->setVisible(false);
    connect(m_close, &QToolButton::clicked, this, [this] {
        hide();
        Q_EMIT closed();
    });
    layout->addWidget(m_close, 0, Qt::AlignTop);

    updateLook();
}

MessageBanner::~MessageBanner() = default;

void MessageBanner::setMessageType(Type type)
{
    if (m_type == type)
        return;
    m_type = type;
    updateLook();
}

QString MessageBanner::text() const
{
    return m_text->text();
}

void MessageBanner::setText(const QString &text)
{
    m_text->setText(text);
    setAccessibleDescription(text);
}

void MessageBanner::setTextFormat(Qt::TextFormat format)
{
    m_text->setTextFormat(format);
    m_text->setOpenExternalLinks(format != Qt::PlainText);
}

bool MessageBanner::isCloseButtonVisible() const
{
    return !m_close->isHidden();
}

void MessageBanner::setCloseButtonVisible(bool visible)
{
    m_close->setVisible(visible);
}

void MessageBanner::addAction(QAction *action)
{
    if (!action)
        return;
    auto *button = new QToolButton(this);
    button->setDefaultAction(action);
    button->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    m_actionsLayout->addWidget(button, 0, Qt::AlignTop);
    m_actions.append({action, button});
    connect(action, &QObject::destroyed, button, [this, action] { removeAction(action); });
}

void MessageBanner::removeAction(QAction *action)
{
    for (qsizetype i = 0; i < m_actions.size(); ++i) {
        if (m_actions.at(i).first == action) {
            m_actions.at(i).second->deleteLater();
            m_actions.removeAt(i);
            return;
        }
    }
}

QColor MessageBanner::accentColor(Type type, bool dark)
{
    // Each pair keeps at least 4.5:1 contrast against the window text it sits under, and
    // the tinted background stays close to the window colour on either palette.
    switch (type) {
    case Type::Positive:
        return dark ? QColor(0x5c, 0xc9, 0x7b) : QColor(0x1e, 0x7e, 0x34);
    case Type::Warning:
        return dark ? QColor(0xf0, 0xb4, 0x29) : QColor(0xa1, 0x5c, 0x00);
    case Type::Error:
        return dark ? QColor(0xff, 0x6b, 0x6b) : QColor(0xc6, 0x28, 0x28);
    case Type::Information:
        break;
    }
    return dark ? QColor(0x6c, 0xa8, 0xff) : QColor(0x1f, 0x5f, 0xbf);
}

QColor MessageBanner::accentColor(Type type)
{
    return accentColor(type, paletteIsDark());
}

void MessageBanner::changeEvent(QEvent *event)
{
    QFrame::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange)
        updateLook();
}

void MessageBanner::paintEvent(QPaintEvent *event)
{
    Q_UNUSED(event)
    const bool dark = palette().color(QPalette::Window).lightnessF() < 0.5;
    const QColor accent = accentColor(m_type, dark);
    QColor fill = accent;
    fill.setAlphaF(dark ? 0.22f : 0.12f);

    QPainter painter(this);
    painter.setRenderHint(QPainter::Antialiasing);
    const QRectF box = QRectF(rect()).adjusted(0.5, 0.5, -0.5, -0.5);
    painter.setPen(QPen(accent, 1));
    painter.setBrush(fill);
    painter.drawRoundedRect(box, 4, 4);
    // A bar at the start edge makes the type readable without relying on the tint alone.
    painter.setPen(Qt::NoPen);
    painter.setBrush(accent);
    painter.drawRoundedRect(QRectF(box.left(), box.top(), 4, box.height()), 2, 2);
}

void MessageBanner::updateLook()
{
    QStyle::StandardPixmap standard = QStyle::SP_MessageBoxInformation;
    QString themeIcon = u"dialog-information"_s;
    QString role = tr("Information");
    switch (m_type) {
    case Type::Positive:
        standard = QStyle::SP_DialogApplyButton;
        themeIcon = u"dialog-positive"_s;
        role = tr("Success");
        break;
    case Type::Warning:
        standard = QStyle::SP_MessageBoxWarning;
        themeIcon = u"dialog-warning"_s;
        role = tr("Warning");
        break;
    case Type::Error:
        standard = QStyle::SP_MessageBoxCritical;
        themeIcon = u"dialog-error"_s;
        role = tr("Error");
        break;
    case Type::Information:
        break;
    }
    const int size = style()->pixelMetric(QStyle::PM_SmallIconSize, nullptr, this);
    const QIcon icon = QIcon::fromTheme(themeIcon, style()->standardIcon(standard, nullptr, this));
    m_icon->setPixmap(icon.pixmap(size, size));
    setAccessibleName(role);
    update();
}

} // namespace taskdeck::ui
