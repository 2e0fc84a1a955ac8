// SPDX-License-Identifier: MIT
#pragma once

#include <QColor>
#include <QFrame>

class QAction;
class QHBoxLayout;
class QLabel;
class QToolButton;

namespace taskdeck::ui {

/*!
 * A coloured message strip with an icon, word-wrapped text, an optional close button and
 * optional action buttons, for notices inside a page (a dangerous task's warning, a refused
 * run, a tasks file that did not load). Its colours are picked to read on light and dark
 * palettes. Text is plain unless setTextFormat() asks for rich text.
 */
class MessageBanner final : public QFrame
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(MessageBanner)

public:
    enum class Type { Information, Positive, Warning, Error };
    Q_ENUM(Type)

    explicit MessageBanner(QWidget *parent = nullptr);
    MessageBanner(Type type, const QString &text, QWidget *parent = nullptr);
    ~MessageBanner() override;

    Type messageType() const { return m_type; }
    void setMessageType(Type type);

    QString text() const;
    void setText(const QString &text);
    /*! Plain text by default; Qt::RichText or Qt::AutoText only for trusted text. */
    void setTextFormat(Qt::TextFormat format);

    bool isCloseButtonVisible() const;
    /*! Shows a close button that hides the banner and emits closed(). Hidden by default. */
    void setCloseButtonVisible(bool visible);

    /*! Adds a button for \a action at the banner's end. The action is not owned. */
    void addAction(QAction *action);
    /*! Removes the button of \a action, if any. */
    void removeAction(QAction *action);

    /*! The accent colour of \a type for a light or a dark palette. */
    static QColor accentColor(Type type, bool dark);
    /*! The accent colour of \a type for the application's current palette. */
    static QColor accentColor(Type type);

Q_SIGNALS:
    /*! The close button was pressed (the banner is hidden by then). */
    void closed();

protected:
    void changeEvent(QEvent *event) override;
    void paintEvent(QPaintEvent *event) override;

private:
    void updateLook();

    Type m_type = Type::Information;
    QLabel *m_icon = nullptr;
    QLabel *m_text = nullptr;
    QHBoxLayout *m_actionsLayout = nullptr;
    QToolButton *m_close = nullptr;
    QList<QPair<QAction *, QToolButton *>> m_actions;
};

} // namespace taskdeck::ui
